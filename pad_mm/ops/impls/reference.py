"""Reference implementation of the PAD convolution: one conv per dilation.

This is the ground truth every faster path is tested against.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..shapes import pad_padding
from .base import Geometry, implementation

__all__ = ['pad_conv2d_reference', 'pad_conv2d_hard_reference']


@implementation
def pad_conv2d_reference(input: Tensor, weight: Tensor, bias: Tensor | None,
                         probs: Tensor, geometry: Geometry) -> Tensor:
    """Soft PAD (:class:`~.base.PADImpl`) as one ``F.conv2d`` per dilation,
    weighted by ``probs`` and summed: the ground truth."""
    k = weight.shape[-1]
    out = None
    for i, d in enumerate(geometry.dilations):
        y = F.conv2d(input, weight, None, geometry.stride, pad_padding(k, d),
                     d, geometry.groups)
        y = probs[:, i:i + 1] * y
        out = y if out is None else out + y
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


@implementation
def pad_conv2d_hard_reference(input: Tensor, weight: Tensor,
                              bias: Tensor | None, index: Tensor,
                              geometry: Geometry) -> Tensor:
    """Hard PAD (:class:`~.base.PADImpl`): :func:`pad_conv2d_reference`
    with the one-hot ``probs`` of ``index`` (all D convs are computed)."""
    probs = F.one_hot(index.long(), len(geometry.dilations))
    probs = probs.permute(0, 3, 1, 2).to(input.dtype)
    return pad_conv2d_reference(input, weight, bias, probs, *geometry)
