"""Reference implementation of the PAD convolution: one conv per dilation.

This is the ground truth every faster path is tested against.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from ..shapes import pad_padding
from .base import implements

__all__ = ['pad_conv2d_reference', 'pad_conv2d_hard_reference']


@implements
def pad_conv2d_reference(input: Tensor,
                         weight: Tensor,
                         bias: Tensor | None,
                         probs: Tensor,
                         dilations: Sequence[int],
                         stride: int = 1,
                         groups: int = 1) -> Tensor:
    """Soft PAD (:class:`~.base.PADImpl`) as one ``F.conv2d`` per dilation,
    weighted by ``probs`` and summed: the ground truth."""
    k = weight.shape[-1]
    out = None
    for i, d in enumerate(dilations):
        y = F.conv2d(input, weight, None, stride, pad_padding(k, d), d,
                     groups)
        y = probs[:, i:i + 1] * y
        out = y if out is None else out + y
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


@implements
def pad_conv2d_hard_reference(input: Tensor,
                              weight: Tensor,
                              bias: Tensor | None,
                              index: Tensor,
                              dilations: Sequence[int],
                              stride: int = 1,
                              groups: int = 1) -> Tensor:
    """Hard PAD (:class:`~.base.PADImpl`): :func:`pad_conv2d_reference`
    with the one-hot ``probs`` of ``index`` (all D convs are computed)."""
    probs = F.one_hot(index.long(), len(dilations)).permute(0, 3, 1, 2)
    return pad_conv2d_reference(input, weight, bias, probs.to(input.dtype),
                                dilations, stride, groups)
