"""The right dilation of an image (PAD-Evidence,
:mod:`pad_mm.datasets.evidence`) beside the PAD layers' choices: where its
map lies, reading it at the image's size, and each layer's agreement with
it (the metrics of :mod:`pad_mm.evaluation.evidence`, on one image)."""
from __future__ import annotations

import os.path as osp
from collections.abc import Sequence

import numpy as np

from pad_mm.evaluation.evidence import (agreement_counts, read_dilation_map,
                                        summarize_agreement, truth_on_grid)

__all__ = ['auto_truth_path', 'truth_path', 'load_truth', 'layer_agreement']

#: the folders of a PAD-Evidence split: ``<root>/images/<split>/NAME`` has
#: its right dilation at ``<root>/dilations/<split>/NAME``
IMAGE_DIR, TRUTH_DIR = 'images', 'dilations'


def auto_truth_path(image: str) -> str | None:
    """``<root>/dilations/<split>/<name>`` for an image at
    ``<root>/images/<split>/<name>``, if that file exists; else None. For
    a relative ``image`` the path is relative to the working directory
    too (the tools write it into their JSON)."""
    split_dir = osp.dirname(osp.abspath(image))
    images_dir = osp.dirname(split_dir)
    if osp.basename(images_dir) != IMAGE_DIR:
        return None
    path = osp.join(osp.dirname(images_dir), TRUTH_DIR,
                    osp.basename(split_dir), osp.basename(image))
    if not osp.isfile(path):
        return None
    return path if osp.isabs(image) else osp.relpath(path)


def truth_path(image: str, truth: str | None, num_images: int = 1
               ) -> str | None:
    """The right-dilation map of ``image``.

    Args:
        image: the image file.
        truth: a folder holding a map of the same file name as each image,
            a map file (only when ``num_images`` is 1), or None: found by
            :func:`auto_truth_path` (None if there is none).
        num_images: how many images the truth is given for.

    Raises:
        FileNotFoundError: ``truth`` (or the map of ``image`` in it) does
            not exist. ValueError: ``truth`` is a file for several images.
    """
    if truth is None:
        return auto_truth_path(image)
    if osp.isdir(truth):
        path = osp.join(truth, osp.basename(image))
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'truth={truth!r}: no right-dilation map {path!r} for the '
                f'image {image!r} (the folder must hold one of the same file '
                'name per image)')
        return path
    if not osp.isfile(truth):
        raise FileNotFoundError(f'truth={truth!r}: no such file or folder')
    if num_images != 1:
        raise ValueError(f'truth={truth!r} is one file for {num_images} '
                         'images; allowed for several images: a folder of '
                         'maps with the images\' file names')
    return truth


def load_truth(path: str, size: Sequence[int],
               original: Sequence[int] | None = None,
               input_size: Sequence[int] | None = None) -> np.ndarray:
    """The right-dilation map at ``path``, [H, W] int64, checked against
    the size ``(H, W)`` of the image as the model sees it.

    Args:
        original: the image file's ``(H, W)``, named in the error when
            the test pipeline resized the image.
        input_size: the model input's ``(H, W)``; it must be the image's
            (a data preprocessor that pads the image, e.g. mmseg's
            ``test_cfg=dict(size=...)``, puts the PAD layers' maps out of
            line with the truth).

    Raises:
        ValueError: the map is not ``H x W`` (the message names both
        sizes), or the model input is not either.
    """
    truth = read_dilation_map(path)
    h, w = int(size[0]), int(size[1])
    if truth.ndim != 2 or truth.shape != (h, w):
        got = 'x'.join(map(str, truth.shape))
        extra = ''
        if original is not None and tuple(original) != (h, w):
            extra = (f' (the image file is {original[0]}x{original[1]}; the '
                     'test pipeline resized it, which a per-pixel truth does '
                     'not survive)')
        raise ValueError(f'the right-dilation map {path!r} is {got}, the '
                         f'image {h}x{w}{extra}: they must be the same size')
    if input_size is not None and tuple(map(int, input_size)) != (h, w):
        raise ValueError(
            f'the model input is {input_size[0]}x{input_size[1]}, the image '
            f'{h}x{w} (the data preprocessor pads it, see its test_cfg): the '
            f'PAD layers\' maps would not line up with the right-dilation map'
            f' {path!r}; remove the padding or use images of the padded size')
    return truth


def layer_agreement(chosen: np.ndarray, truth: np.ndarray,
                    options: Sequence[int]) -> dict:
    """How a layer's chosen dilation [h, w] agrees with the right one
    ``truth`` [H, W] (read at the centres of the layer's grid).

    Returns:
        :func:`summarize_agreement` of the :func:`agreement_counts`
        (``agree``, ``agree_d<t>``, ``agree_const``, ``const_d``) plus
        ``counts``: ``{str(t): [agreeing pixels, pixels]}``.
    """
    counts = agreement_counts(np.asarray(chosen),
                              truth_on_grid(truth, np.shape(chosen)))
    out = summarize_agreement(counts, options)
    out['counts'] = {str(t): list(c) for t, c in sorted(counts.items())}
    return out
