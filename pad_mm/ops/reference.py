"""Reference implementation of the PAD convolution: one conv per dilation.

This is the ground truth every faster path is tested against.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

__all__ = ['pad_conv2d_reference', 'pad_conv2d_hard_reference']


def pad_conv2d_reference(input: Tensor,
                         weight: Tensor,
                         bias: Tensor | None,
                         probs: Tensor,
                         dilations: Sequence[int],
                         stride: int = 1,
                         groups: int = 1) -> Tensor:
    """``sum_d probs[:, d:d+1] * conv2d(input, weight, dilation=d) + bias``.

    Shapes: input [N, C_in, H, W], weight [C_out, C_in/groups, k, k],
    bias [C_out] or None, probs [N, D, H_out, W_out] -> [N, C_out, H_out, W_out].
    The padding of dilation ``d`` is ``d * (k - 1) // 2`` so every branch
    has the same output size. No argument checking: see ``pad_conv2d``.
    """
    k = weight.shape[-1]
    out = None
    for i, d in enumerate(dilations):
        y = F.conv2d(input, weight, None, stride, d * (k - 1) // 2, d, groups)
        y = probs[:, i:i + 1] * y
        out = y if out is None else out + y
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def pad_conv2d_hard_reference(input: Tensor,
                              weight: Tensor,
                              bias: Tensor | None,
                              index: Tensor,
                              dilations: Sequence[int],
                              stride: int = 1,
                              groups: int = 1) -> Tensor:
    """Hard PAD ground truth: :func:`pad_conv2d_reference` with the one-hot
    ``probs`` of ``index`` [N, H_out, W_out] (all D convs are computed).

    Shapes: as :func:`pad_conv2d_reference` -> [N, C_out, H_out, W_out].
    """
    probs = F.one_hot(index.long(), len(dilations)).permute(0, 3, 1, 2)
    return pad_conv2d_reference(input, weight, bias, probs.to(input.dtype),
                                dilations, stride, groups)
