"""PAD-Textures: a generated segmentation set where the right receptive
field changes from pixel to pixel.

Each image is a Voronoi partition into regions; every region is filled
with one of five textures whose class does not depend on its scale
(horizontal, vertical and diagonal stripes, checkerboard, dots), drawn at a
period of 4, 8 or 16 pixels with random colours, phase and noise. Telling
wide stripes from a wide checkerboard needs a receptive field about as
large as the period, which differs between regions of one image.

On-disk layout (mmseg's generic one, read by ``BaseSegDataset``)::

    data_root/
        images/{train,val}/000000.png       RGB
        annotations/{train,val}/000000.png  uint8 class ids (0..4)
        meta.json                           generator parameters

The set is a pure function of its parameters (seed included).
"""
from __future__ import annotations

import numpy as np

from .generated import ensure_generated, write_generated_set

__all__ = [
    'TEXTURE_CLASSES', 'TEXTURE_PERIODS', 'render_textures_sample',
    'make_textures_dataset', 'ensure_textures_dataset'
]

TEXTURE_CLASSES = ('horizontal', 'vertical', 'diagonal', 'checker', 'dots')
TEXTURE_PERIODS = (4, 8, 16)
FORMAT_VERSION = 1


def _pattern(cls: int, period: int, yy: np.ndarray, xx: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """Binary texture (float 0/1) of class ``cls`` on the grid yy, xx."""
    py, px = rng.integers(0, period, size=2)
    y, x = (yy + py) % period, (xx + px) % period
    half = period // 2
    if cls == 0:
        return (y < half).astype(np.float32)
    if cls == 1:
        return (x < half).astype(np.float32)
    if cls == 2:
        return (((yy + xx + py) % period) < half).astype(np.float32)
    if cls == 3:
        return ((y < half) ^ (x < half)).astype(np.float32)
    r = (y - half + 0.5)**2 + (x - half + 0.5)**2
    return (r < (period * 0.3)**2).astype(np.float32)


def render_textures_sample(rng: np.random.Generator,
                           size: int = 64,
                           min_regions: int = 2,
                           max_regions: int = 5,
                           noise: float = 0.08
                           ) -> tuple[np.ndarray, np.ndarray]:
    """One image [size, size, 3] uint8 and its label map [size, size]
    uint8."""
    n = int(rng.integers(min_regions, max_regions + 1))
    seeds = rng.uniform(0, size, size=(n, 2))
    yy, xx = np.mgrid[0:size, 0:size]
    dist = (yy[None] - seeds[:, 0, None, None])**2 + \
        (xx[None] - seeds[:, 1, None, None])**2
    region = dist.argmin(0)
    img = np.zeros((size, size, 3), np.float32)
    label = np.zeros((size, size), np.uint8)
    for r in range(n):
        cls = int(rng.integers(len(TEXTURE_CLASSES)))
        period = int(rng.choice(TEXTURE_PERIODS))
        pat = _pattern(cls, period, yy, xx, rng)
        fg, bg = rng.uniform(0, 1, size=(2, 3))
        if np.abs(fg - bg).sum() < 0.6:  # keep the texture visible
            bg = 1.0 - fg
        tex = pat[..., None] * fg + (1 - pat[..., None]) * bg
        mask = region == r
        img[mask] = tex[mask]
        label[mask] = cls
    img += rng.normal(0, noise, img.shape).astype(np.float32)
    img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    return img, label


def make_textures_dataset(root: str,
                          seed: int = 0,
                          num_train: int = 200,
                          num_val: int = 50,
                          size: int = 64) -> str:
    """Write the data set under ``root`` (replaced if present)."""
    for name, value in (('num_train', num_train), ('num_val', num_val),
                        ('size', size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}')
    if size < 16:
        raise ValueError(f'size must be >= 16, got {size}')
    meta = dict(version=FORMAT_VERSION, seed=seed, num_train=num_train,
                num_val=num_val, size=size, classes=list(TEXTURE_CLASSES))
    return write_generated_set(root, 'textures', ('images', 'annotations'),
                               lambda rng: render_textures_sample(rng, size),
                               seed, num_train, num_val, meta)


def ensure_textures_dataset(root: str, **params) -> bool:
    """Create the data set under ``root`` unless one with the same
    parameters is there. Returns True if it was (re)generated.

    Processes that share ``root`` (e.g. parallel runs of a sweep) take a
    file lock next to it, so only the first one generates and no one sees
    the set while it is replaced.
    """
    want = dict(seed=0, num_train=200, num_val=50, size=64)
    want.update(params)
    return ensure_generated(root, FORMAT_VERSION, want,
                            make_textures_dataset)
