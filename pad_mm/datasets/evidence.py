"""PAD-Evidence: a generated segmentation set whose right dilation is known
at every pixel.

Why a second set
----------------
PAD-Textures (:mod:`pad_mm.datasets.textures`) draws its textures at
periods of 4, 8 and 16 input pixels, and the demo puts PAD in layer4 of a
ResNet-18 at output stride 8 on 64x64 images: the PAD layers see 8x8 maps,
the periods are 0.5, 1 and 2 of their pixels, and the receptive field
before them already spans the image. There, the dilation a 3x3 conv uses
barely changes what it sees, and nothing says which one is right. This set
is built so that the dilation options of the PAD layers are tied to the
scales in the image, and the right option of each pixel is written down.

Design (written before any PAD run on it)
-----------------------------------------
* **Scales tied to the options.** The PAD layers run at output stride
  ``stride`` (4) on ``size`` x ``size`` images (128: 32x32 maps). A region
  of scale ``d`` (``d`` in ``dilations`` = (1, 2, 4)) is drawn so that
  what tells its class apart lies ``d`` map pixels (``stride * d`` input
  pixels) away from a pixel, along one of the directions a 3x3 conv
  samples (rows, columns, diagonals): a dilation-d 3x3 conv has its taps
  exactly there.
* **Classes** (``EVIDENCE_CLASSES``): the direction that carries the
  structure: horizontal, vertical, diagonal, anti-diagonal. Class and
  scale are drawn independently per region; fore- and background colours,
  offsets and pixel noise are random, so colour and brightness say
  nothing.
* **Textures** (``texture``; the evidence configs use ``'pairs'`` with
  aligned cells; the others are kept because the controls rejected them,
  see the evidence configs' README):

  - ``'dimers'``: pairs of square blobs of side ``stride * d / 2``, the
    two centres ``stride * d`` pixels apart along the class direction,
    one pair per cell of a ``2 * stride * d`` grid at a random offset.
    The texture of scale d is the one of scale 1 magnified d times. A
    blob alone shows no direction; its partner d map pixels away does. A
    conv with dilation ``2d`` or ``4d`` jumps over the partner, one with
    ``d/2`` or ``d/4`` needs a deeper stack to reach it.
  - ``'stripes'``: two-colour stripes (horizontal, vertical, the two
    diagonals) of period ``2 * stride * d``: half a period is d map
    pixels, a whole period (dilation 2d) is aliased. Rejected: every edge
    shows the stripe direction locally, so every fixed dilation was near
    the ceiling on every scale.
  - ``'pairs'``: random binary cells of ``stride`` pixels in which every
    other run of d cells along the class direction copies the run before
    it (equal with probability 3/4 at lag d, 1/2 at any other lag, 2d
    included). With ``align_cells=True`` the cells lie on the grid of
    ``stride`` x ``stride`` patches, so that a patch stem sees exactly one
    cell per map pixel. No local cue at all, and no structure at any lag
    but d along the class direction: a 3x3 conv of dilation d compares a
    pixel with its partners (6 pairs of taps at lag d), one of dilation
    d/2 only with its outer taps (3 pairs), any other none. Rejected with
    a ResNet stem and unaligned cells (near chance beyond the finest
    scale); chosen with aligned cells and a patch stem (see the evidence
    configs' README, step 6).
* **Several scales in one image** (``layout='voronoi'``): a Voronoi
  partition into ``min_regions``..``max_regions`` regions; the first three
  get the three scales in random order, the others a random scale, so an
  image with three or more regions holds every scale. (``'objects'``,
  regions whose size grows with their scale, was rejected by the
  controls: nothing was learned in the pilot.)
* **Ground truth of the right dilation.** Beside the label map, a PNG per
  image holds the right dilation of each pixel (its region's ``d``:
  values 1, 2, 4). It is exact inside a region; within about a receptive
  field of a region boundary no single dilation is "right" for a conv
  that straddles two regions, which limits any agreement below 1.
* **What the stem sees.** A conv stack before the PAD layers with a
  receptive field of a few map pixels (15 input pixels for a ResNet V1c
  stem at stride 4) already sees structure at a lag of one or two map
  pixels, whatever the dilation of the conv after it; with the first
  textures the controls could therefore not separate the scales. The
  evidence configs use ``'pairs'`` with ``align_cells=True`` and a patch
  stem (one 4x4 stride-4 conv, ``PatchConvNet``): a map pixel sees one
  cell, and only the convs under test see across cells.
* **A local cue of the scale** (``scale_cue``; added after the first
  sweep, see the evidence configs' README). A PAD prior is a 1x1
  function of its layer's input at one pixel (eqs. 3-5). With the
  textures alone, a linear probe of the right dilation from the inputs of
  the 3x3 convs of the trained controls scores at the constant choice:
  nothing at a pixel tells its scale, so no prior can choose by it, and
  the first sweep could show whether PAD helps but not whether its
  choice follows the scale. With ``scale_cue=True`` the colour channel of
  a region's scale is saturated in fore- and background, so one pixel
  tells its scale while the class still shows only at the scale's lag;
  a fixed dilation gains nothing from it.
* **What the controls must show first.** Fixed dilations d = 1, 2, 4 (no
  choice) are trained before any PAD run, and their pixel accuracy is
  reported per true scale. The setting can answer "does a per-pixel choice
  help?" only if each fixed d is clearly best on its own scale and worse on
  the others, and the best fixed d is well below the ceiling. Changes to
  this set after that point are made from the controls' numbers only (see
  the evidence configs' README for each step and its numbers), never from
  PAD's.

On-disk layout (mmseg's generic one, read by ``BaseSegDataset``; the
dilation maps beside it)::

    data_root/
        images/{train,val}/000000.png       RGB
        annotations/{train,val}/000000.png  uint8 class ids (0..4)
        dilations/{train,val}/000000.png    uint8 right dilation (1, 2, 4)
        meta.json                           generator parameters

The set is a pure function of its parameters (seed included); generation
of the default size (400 + 100 images of 128x128) takes about 15 seconds.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .generated import ensure_generated, write_generated_set

__all__ = [
    'EVIDENCE_CLASSES', 'EVIDENCE_DILATIONS', 'evidence_period',
    'render_evidence_sample', 'make_evidence_dataset',
    'ensure_evidence_dataset'
]

EVIDENCE_CLASSES = ('horizontal', 'vertical', 'diagonal', 'antidiagonal')
EVIDENCE_DILATIONS = (1, 2, 4)
FORMAT_VERSION = 1
TEXTURES = ('stripes', 'pairs', 'dimers')
LAYOUTS = ('voronoi', 'objects')
DEFAULTS = dict(seed=0, num_train=400, num_val=100, size=128, stride=4,
                dilations=list(EVIDENCE_DILATIONS), min_regions=3,
                max_regions=4, noise=0.1, texture='dimers',
                layout='voronoi', align_cells=False, scale_cue=False)


def evidence_period(dilation: int, stride: int) -> int:
    """Period in input pixels of a region whose right dilation is
    ``dilation`` on a map of output stride ``stride``: ``2 * d * s``."""
    return 2 * dilation * stride


# lattice direction (dy, dx) of each class of the 'pairs' textures
PAIR_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _pairs(cls: int, lag: int, cell: int, size: int,
           rng: np.random.Generator, aligned: bool = False) -> np.ndarray:
    """Binary texture (float 0/1) of random cells of ``cell`` pixels in
    which, along the class's direction, every other run of ``lag`` cells
    repeats the run ``lag`` cells before it: two cells ``lag`` apart along
    that direction are equal with probability 3/4, and 1/2 at any other
    lag or direction (2x ``lag`` included)."""
    dy, dx = PAIR_DIRECTIONS[cls]
    n = size // cell + 2
    grid = rng.integers(0, 2, size=(n, n)).astype(np.float32)
    # t: the coordinate along the direction (steps of (dy, dx) move t by 1)
    ii, jj = np.mgrid[0:n, 0:n]
    t = jj if dx != 0 else ii
    t = t + int(rng.integers(0, 2 * lag))
    copy = (t // lag) % 2 == 1
    for i, j in sorted(zip(*np.nonzero(copy)),
                       key=lambda ij: ij[1] if dx != 0 else ij[0]):
        si, sj = i - dy * lag, j - dx * lag
        if 0 <= si < n and 0 <= sj < n:
            grid[i, j] = grid[si, sj]
    oy, ox = rng.integers(0, cell, size=2)  # drawn either way: same stream
    if aligned:
        oy = ox = 0
    return np.repeat(np.repeat(grid, cell, 0), cell, 1)[oy:oy + size,
                                                        ox:ox + size]


def _dimers(cls: int, d: int, stride: int, size: int,
            rng: np.random.Generator) -> np.ndarray:
    """Binary texture (bool) of dimers at scale ``d``: pairs of square
    blobs of side ``stride * d / 2`` whose centres lie ``stride * d``
    pixels (d map pixels) apart along the class's direction, one dimer
    per cell of a ``2 * stride * d`` grid at a random offset inside it.
    The texture at scale d is the one at scale 1 magnified d times; a blob
    alone shows no direction, only its partner d map pixels away does."""
    dy, dx = PAIR_DIRECTIONS[cls]
    side = max(1, stride * d // 2)
    lag = stride * d
    grid = 2 * lag
    ext_y = side + lag * abs(dy)
    ext_x = side + lag * abs(dx)
    out = np.zeros((size + 2 * grid, size + 2 * grid), bool)
    oy0, ox0 = rng.integers(0, grid, size=2)
    for gy in range(-1, size // grid + 2):
        for gx in range(-1, size // grid + 2):
            y = grid + oy0 + gy * grid + int(rng.integers(0, grid - ext_y + 1))
            x = grid + ox0 + gx * grid + int(rng.integers(0, grid - ext_x + 1))
            if dx < 0:
                x += lag
            for k in (0, 1):
                by, bx = y + k * dy * lag, x + k * dx * lag
                if 0 <= by and by + side <= out.shape[0] and 0 <= bx and \
                        bx + side <= out.shape[1]:
                    out[by:by + side, bx:bx + side] = True
    return out[grid:grid + size, grid:grid + size]


def _objects_layout(rng: np.random.Generator, size: int, stride: int,
                    dilations: Sequence[int], yy: np.ndarray,
                    xx: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Region map and region scales (indices into ``dilations``, sorted
    ascending) where a region's size grows with its scale: a background
    of two Voronoi regions at the largest scale, then, from the largest
    remaining scale down, disks of radius 1.5-2.5 x ``stride * d`` pixels
    (3 per scale, twice as many for each smaller scale), later ones on
    top."""
    order = np.argsort(dilations)
    seeds = rng.uniform(0, size, size=(2, 2))
    dist = (yy[None] - seeds[:, 0, None, None])**2 + \
        (xx[None] - seeds[:, 1, None, None])**2
    region = dist.argmin(0)
    scales = [int(order[-1])] * 2
    for rank, i in enumerate(order[-2::-1]):
        d = dilations[int(i)]
        for _ in range(3 * 2**rank):
            cy, cx = rng.uniform(0, size, size=2)
            r = rng.uniform(1.5, 2.5) * stride * d
            region[(yy - cy)**2 + (xx - cx)**2 < r * r] = len(scales)
            scales.append(int(i))
    return region, scales


def _pattern(cls: int, period: int, yy: np.ndarray, xx: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """Binary pattern (bool) of class ``cls`` and period ``period``."""
    py, px = rng.integers(0, period, size=2)
    half = period // 2
    y, x = (yy + py) % period, (xx + px) % period
    if cls == 0:
        return y < half
    if cls == 1:
        return x < half
    if cls == 2:
        return ((yy + xx + py) % period) < half
    return ((xx - yy + py) % period) < half


def _check_params(size: int, stride: int, dilations: Sequence[int],
                  min_regions: int, max_regions: int, noise: float) -> None:
    for name, value in (('size', size), ('stride', stride),
                        ('min_regions', min_regions),
                        ('max_regions', max_regions)):
        if isinstance(value, bool) or not isinstance(value, int) or \
                value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}')
    if not isinstance(dilations, (list, tuple)) or not dilations or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 1
            for d in dilations) or len(set(dilations)) != len(dilations):
        raise ValueError('dilations must be a non-empty list of distinct '
                         f'positive ints, got {dilations!r}')
    if max(dilations) > 255:
        raise ValueError(f'dilations must be <= 255 (stored in a uint8 '
                         f'PNG), got {dilations!r}')
    if min_regions > max_regions:
        raise ValueError(f'min_regions ({min_regions}) must be <= '
                         f'max_regions ({max_regions})')
    if size % stride:
        raise ValueError(f'size ({size}) must be a multiple of stride '
                         f'({stride})')
    biggest = evidence_period(max(dilations), stride)
    if biggest > size:
        raise ValueError(f'size ({size}) must hold one period of the '
                         f'largest scale ({biggest} px = 2 * {max(dilations)}'
                         f' * stride {stride})')
    if not isinstance(noise, (int, float)) or not np.isfinite(noise) or \
            noise < 0:
        raise ValueError(f'noise must be a finite number >= 0, got '
                         f'{noise!r}')


def render_evidence_sample(rng: np.random.Generator,
                           size: int = 128,
                           stride: int = 4,
                           dilations: Sequence[int] = EVIDENCE_DILATIONS,
                           min_regions: int = 3,
                           max_regions: int = 4,
                           noise: float = 0.1,
                           texture: str = 'dimers',
                           layout: str = 'voronoi',
                           align_cells: bool = False,
                           scale_cue: bool = False
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sample: image [size, size, 3] uint8, label map [size, size]
    uint8 (class ids), right-dilation map [size, size] uint8 (values of
    ``dilations``). ``align_cells`` (``'pairs'`` only): cells on the
    ``stride`` grid. ``scale_cue``: the colour channel of the region's
    scale (R, G, B for the first, second, third option) is 1 in fore- and
    background, so one pixel tells its scale; the class still shows only
    at the scale's lag (at most three options)."""
    _check_params(size, stride, dilations, min_regions, max_regions, noise)
    for name, value, options in (('texture', texture, TEXTURES),
                                 ('layout', layout, LAYOUTS)):
        if value not in options:
            raise ValueError(f'{name} must be one of {list(options)}, got '
                             f'{value!r}')
    for name, value in (('align_cells', align_cells),
                        ('scale_cue', scale_cue)):
        if not isinstance(value, bool):
            raise ValueError(f'{name} must be a bool, got {value!r}')
    if scale_cue and len(dilations) > 3:
        raise ValueError(f'scale_cue=True marks each scale with one of the 3 '
                         f'colour channels: at most 3 dilations, got '
                         f'{list(dilations)}')
    if align_cells and texture != 'pairs':
        raise ValueError(f"align_cells=True applies to texture='pairs' "
                         f'only, got texture={texture!r}')
    ncls = len(EVIDENCE_CLASSES)
    yy, xx = np.mgrid[0:size, 0:size]
    if layout == 'voronoi':
        n = int(rng.integers(min_regions, max_regions + 1))
        seeds = rng.uniform(0, size, size=(n, 2))
        # aligned cells: regions are unions of cells too (cell centres)
        cy, cx = ((yy // stride) * stride + (stride - 1) / 2,
                  (xx // stride) * stride + (stride - 1) / 2) \
            if align_cells else (yy, xx)
        dist = (cy[None] - seeds[:, 0, None, None])**2 + \
            (cx[None] - seeds[:, 1, None, None])**2
        region = dist.argmin(0)
        scales = list(rng.permutation(len(dilations)))[:n]
        scales += list(rng.integers(0, len(dilations), size=n - len(scales)))
    else:
        region, scales = _objects_layout(rng, size, stride, dilations, yy,
                                         xx)
        n = len(scales)
    img = np.zeros((size, size, 3), np.float32)
    label = np.zeros((size, size), np.uint8)
    dil = np.zeros((size, size), np.uint8)
    for r in range(n):
        cls = int(rng.integers(ncls))
        d = int(dilations[int(scales[r])])
        fg, bg = rng.uniform(0, 1, size=(2, 3))
        if np.abs(fg - bg).sum() < 0.6:  # keep the pattern visible
            bg = 1.0 - fg
        if scale_cue:
            cue = sorted(dilations).index(d)
            fg[cue] = bg[cue] = 1.0
            rest = [c for c in range(3) if c != cue]
            if np.abs(fg[rest] - bg[rest]).sum() < 0.4:
                bg[rest] = 1.0 - fg[rest]
        if texture == 'pairs':
            pat = _pairs(cls, d, stride, size, rng,
                         aligned=align_cells)[..., None]
        elif texture == 'dimers':
            pat = _dimers(cls, d, stride, size, rng)[..., None].astype(
                np.float32)
        else:
            pat = _pattern(cls, evidence_period(d, stride), yy, xx,
                           rng)[..., None].astype(np.float32)
        mask = region == r
        img[mask] = (pat * fg + (1 - pat) * bg)[mask]
        label[mask] = cls
        dil[mask] = d
    img += rng.normal(0, noise, img.shape).astype(np.float32)
    img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    return img, label, dil


def make_evidence_dataset(root: str, **params) -> str:
    """Write the set under ``root`` (replaced if present). ``params``:
    ``seed``, ``num_train``, ``num_val`` and the keywords of
    :func:`render_evidence_sample`; missing ones take ``DEFAULTS``."""
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise ValueError(f'unknown PAD-Evidence parameters {sorted(unknown)}'
                         f'; allowed: {sorted(DEFAULTS)}')
    p = dict(DEFAULTS, **params)
    p['dilations'] = list(p['dilations'])
    for name in ('num_train', 'num_val'):
        value = p[name]
        if isinstance(value, bool) or not isinstance(value, int) or \
                value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}')
    render = {k: p[k] for k in ('size', 'stride', 'dilations', 'min_regions',
                                'max_regions', 'noise', 'texture',
                                'layout', 'align_cells', 'scale_cue')}
    _check_params(**{k: v for k, v in render.items()
                     if k not in ('texture', 'layout', 'align_cells',
                                  'scale_cue')})
    meta = dict(version=FORMAT_VERSION, classes=list(EVIDENCE_CLASSES), **p)
    return write_generated_set(
        root, 'evidence', ('images', 'annotations', 'dilations'),
        lambda rng: render_evidence_sample(rng, **render), p['seed'],
        p['num_train'], p['num_val'], meta)


def ensure_evidence_dataset(root: str, **params) -> bool:
    """Create the set under ``root`` unless one with the same parameters is
    there. Returns True if it was (re)generated. Processes sharing ``root``
    (parallel sweep runs) take a file lock beside it, so only the first
    generates and no one reads a half-written set."""
    want = dict(DEFAULTS, **params)
    want['dilations'] = list(want['dilations'])
    return ensure_generated(root, FORMAT_VERSION, want, make_evidence_dataset)
