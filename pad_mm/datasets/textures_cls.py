"""PAD-Textures-Cls: a generated classification set built from the
PAD-Textures renderer, where the right receptive field changes from image
to image and from region to region.

Each image is a PAD-Textures image (:func:`render_textures_sample`): a
Voronoi partition into 2 or 3 regions, each filled with one of the five
textures (horizontal, vertical and diagonal stripes, checkerboard, dots)
at its own period of 4, 8 or 16 pixels, with random colours, phase and
noise. Its label is the texture that covers the largest share of the image;
images whose largest share is below ``min_share`` are drawn again, so the
label is never a near tie. Colour says nothing about the class, and the
period (so the receptive field a texture needs) changes between the regions
of one image.

On-disk layout (mmpretrain's ``CustomDataset`` folder layout: one
sub-folder per class, named after it; class indices follow the sorted
folder names, ``TEXTURE_CLS_CLASSES``)::

    data_root/
        train/<class>/000000.png     RGB
        val/<class>/000000.png
        meta.json                    generator parameters and class counts

The set is a pure function of its parameters (seed included).
"""
from __future__ import annotations

import json
import os
import os.path as osp

import numpy as np
from PIL import Image

from .generated import ensure_generated, split_seeds, staged
from .textures import TEXTURE_CLASSES, render_textures_sample

__all__ = [
    'TEXTURE_CLS_CLASSES', 'DEFAULTS', 'render_textures_cls_sample',
    'make_textures_cls_dataset', 'ensure_textures_cls_dataset'
]

#: class names in index order: the sorted folder names, as
#: ``CustomDataset`` numbers them
TEXTURE_CLS_CLASSES = tuple(sorted(TEXTURE_CLASSES))
FORMAT_VERSION = 1
#: generator parameters and their defaults (the ``generate`` keys)
DEFAULTS = dict(seed=0, num_train=1000, num_val=250, size=32,
                 max_regions=3, min_share=0.55)


def render_textures_cls_sample(rng: np.random.Generator,
                               size: int = 32,
                               max_regions: int = 3,
                               min_share: float = 0.55
                               ) -> tuple[np.ndarray, int]:
    """One image [size, size, 3] uint8 and its class index into
    ``TEXTURE_CLS_CLASSES``: the texture covering the largest share of the
    image (at least ``min_share``; otherwise the image is drawn again from
    the same generator)."""
    while True:
        img, label_map = render_textures_sample(
            rng, size, min_regions=2, max_regions=max_regions)
        share = np.bincount(label_map.ravel(),
                            minlength=len(TEXTURE_CLASSES)) / label_map.size
        top = int(share.argmax())
        if share[top] >= min_share:
            return img, TEXTURE_CLS_CLASSES.index(TEXTURE_CLASSES[top])


def _check(seed, num_train, num_val, size, max_regions, min_share) -> None:
    for name, value in (('num_train', num_train), ('num_val', num_val),
                        ('size', size), ('max_regions', max_regions)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}')
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f'seed must be an int >= 0, got {seed!r}')
    if size < 16:
        raise ValueError(f'size must be >= 16, got {size}')
    if max_regions < 2:
        raise ValueError(f'max_regions must be >= 2 (an image has 2 to '
                         f'max_regions regions), got {max_regions}')
    if not isinstance(min_share, (int, float)) or not 0.5 < min_share < 1:
        raise ValueError('min_share must be a number in (0.5, 1) (the '
                         'largest texture share of an image), got '
                         f'{min_share!r}')


def make_textures_cls_dataset(root: str,
                              seed: int = 0,
                              num_train: int = 1000,
                              num_val: int = 250,
                              size: int = 32,
                              max_regions: int = 3,
                              min_share: float = 0.55) -> str:
    """Write the data set under ``root`` (replaced if present); returns
    ``root``.

    Raises:
        ValueError: a parameter out of range (named in the message).
    """
    _check(seed, num_train, num_val, size, max_regions, min_share)
    counts = {}
    with staged(root, 'textures-cls') as tmp:
        for split, count, split_seed in split_seeds(seed, num_train,
                                                    num_val):
            rng = np.random.default_rng(split_seed)
            for name in TEXTURE_CLS_CLASSES:
                os.makedirs(osp.join(tmp, split, name))
            per_class = [0] * len(TEXTURE_CLS_CLASSES)
            for i in range(count):
                img, label = render_textures_cls_sample(
                    rng, size, max_regions, min_share)
                per_class[label] += 1
                Image.fromarray(img).save(
                    osp.join(tmp, split, TEXTURE_CLS_CLASSES[label],
                             f'{i:06d}.png'))
            counts[split] = dict(zip(TEXTURE_CLS_CLASSES, per_class))
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(
                dict(version=FORMAT_VERSION, seed=seed, num_train=num_train,
                     num_val=num_val, size=size, max_regions=max_regions,
                     min_share=min_share,
                     classes=list(TEXTURE_CLS_CLASSES), counts=counts), f)
    return root


def ensure_textures_cls_dataset(root: str, **params) -> bool:
    """Create the data set under ``root`` unless one with the same
    parameters is there (a file lock beside it keeps parallel runs from
    writing it twice). Returns True if it was (re)generated.

    Raises:
        TypeError: an unknown parameter.
        ValueError: a parameter out of range.
    """
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise TypeError(f'PAD-Textures-Cls: unknown generate key(s) '
                        f'{unknown}; allowed: {sorted(DEFAULTS)}')
    want = dict(DEFAULTS, **params)
    _check(**want)
    return ensure_generated(root, FORMAT_VERSION, want,
                            make_textures_cls_dataset)
