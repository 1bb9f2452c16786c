"""Which calls the Triton kernels take: the compute dtype, the limits of
:func:`supports` (Triton >= 3, CUDA compute capability >= 8.0 or the
interpreter, 32-bit offsets, the grid), and what ``impl='auto'``
considers (:func:`prefer`)."""
from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor

from ..shapes import conv_out_size
from .triton_kernels import HAS_TRITON, interpreting, triton

__all__ = ['compute_dtype', 'supports', 'supports_hard', 'prefer']

_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_MAX_NUMEL = 2**31 - 1  # int32 offsets inside the kernels
_MAX_GRID_YZ = 65535


def _triton_major() -> int:
    try:
        return int(triton.__version__.split('.')[0])
    except Exception:  # pragma: no cover
        return 0


@functools.lru_cache(maxsize=None)
def _capability_ok(index: int) -> bool:
    return torch.cuda.get_device_capability(index) >= (8, 0)


def compute_dtype(input: Tensor, weight: Tensor) -> torch.dtype | None:
    """The dtype the kernels compute in for these inputs, or None if they
    cannot: the autocast dtype under autocast (like a conv), else the
    input's; the weight must be in that dtype or float32 (cast inside)."""
    if input.dtype not in _DTYPES or weight.dtype not in _DTYPES:
        return None
    dev = input.device.type
    dtype = input.dtype
    if torch.is_autocast_enabled(dev):
        dtype = torch.get_autocast_dtype(dev)
        if dtype not in _DTYPES:
            return None
    if weight.dtype not in (dtype, torch.float32):
        return None
    return dtype


def supports(input: Tensor, weight: Tensor, probs: Tensor,
             dilations: Sequence[int], stride: int, groups: int) -> bool:
    """Whether the Triton kernels handle these inputs: Triton >= 3, CUDA
    tensors on a GPU of compute capability >= 8.0 (or CPU tensors under
    ``TRITON_INTERPRET=1``), a :func:`compute_dtype`, floating ``probs``
    (integer ``index`` for the hard op), and the 32-bit/grid limits."""
    if not HAS_TRITON or _triton_major() < 3:
        return False
    if compute_dtype(input, weight) is None:
        return False
    if input.is_cuda:
        if not _capability_ok(input.device.index if input.device.index
                              is not None else torch.cuda.current_device()):
            return False
    elif not (interpreting() and input.device.type == 'cpu'):
        return False
    n = input.shape[0]
    c_out, k = weight.shape[0], weight.shape[-1]
    h_out = conv_out_size(input.shape[2], k, stride)
    w_out = conv_out_size(input.shape[3], k, stride)
    numels = (input.numel(), weight.numel(), probs.numel(),
              n * c_out * h_out * w_out)
    return (max(numels) <= _MAX_NUMEL and groups * k * k <= _MAX_GRID_YZ)


def supports_hard(input: Tensor, weight: Tensor, index: Tensor,
                  dilations: Sequence[int], stride: int,
                  groups: int) -> bool:
    """:func:`supports` for the hard op (``index`` [N, H_out, W_out])."""
    return supports(input, weight, index, dilations, stride, groups)


def prefer(input: Tensor, weight: Tensor, probs: Tensor,
           dilations: Sequence[int], stride: int, groups: int) -> bool:
    """``impl='auto'`` considers Triton (after its self-check and a timing
    against the reference) on CUDA for non-degenerate per-group GEMMs;
    depthwise convs stay on cuDNN through the reference."""
    return input.is_cuda and weight.shape[1] >= 16
