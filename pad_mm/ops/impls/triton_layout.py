"""What the Triton kernels are given: the weight in their layouts, inputs
in channels_last, the dilations and a zero bias as device tensors made
without a host copy, and the precision of their dots (TF32 following
cuDNN's flags). Torch (and Triton's interpreter flag) only."""
from __future__ import annotations

import torch
from torch import Tensor

from .. import calls
from .triton_kernels import interpreting

__all__ = ['tf32_enabled', 'dot_mode', 'dil_tensor', 'zero_bias',
           'memory_format_of', 'channels_last', 'pack_weight',
           'cols_weight']


def tf32_enabled() -> bool:
    """Whether cuDNN convs use TF32 for float32 in this process (the fp32
    kernels follow, so ``impl='triton'`` and the reference round alike).

    torch >= 2.9: ``torch.backends.cudnn.conv.fp32_precision``; ``'none'``
    inherits from ``torch.backends.cudnn.fp32_precision``, then from
    ``torch.backends.fp32_precision``; TF32 iff the first value that is not
    ``'none'`` is ``'tf32'`` (all ``'none'``: IEEE, as ATen's
    ``allowTF32CuDNN`` resolves it; setting the legacy
    ``cudnn.allow_tf32 = False`` leaves all three ``'none'``). Older torch:
    ``torch.backends.cudnn.allow_tf32``.
    """
    conv = getattr(torch.backends.cudnn, 'conv', None)
    prec = getattr(conv, 'fp32_precision', None) if conv is not None \
        else None
    if prec is None:
        return bool(torch.backends.cudnn.allow_tf32)  # torch < 2.9
    for parent in (torch.backends.cudnn, torch.backends):
        if prec != 'none':
            break
        prec = getattr(parent, 'fp32_precision', 'none')
    return prec == 'tf32'


def dot_mode(dtype: torch.dtype) -> tuple[bool, str]:
    """(CAST: cast fp32 tiles to the compute dtype for tl.dot, PREC: the
    fp32 input precision)."""
    if interpreting():
        # the interpreter's dot is exact only in fp32
        return False, 'ieee'
    if dtype == torch.float32:
        return False, 'tf32' if tf32_enabled() else 'ieee'
    return True, 'ieee'



_DIL_CACHE: dict[tuple, Tensor] = {}
_ZEROS_CACHE: dict[tuple, Tensor] = {}


def dil_tensor(dilations: tuple[int, ...], device: torch.device) -> Tensor:
    """The dilations as an int32 tensor on ``device``, with no
    host-to-device copy: filled on the device (one fill per dilation, a
    kernel with a scalar argument, which a CUDA graph records). Cached per
    (dilations, device) outside a CUDA-graph capture; inside one it is
    made per call (a capture only records the fills, so a tensor made
    there holds its values only once the graph is replayed)."""
    key = (tuple(dilations), str(device))
    t = _DIL_CACHE.get(key)
    if t is not None:
        return t
    t = torch.empty(len(dilations), dtype=torch.int32, device=device)
    for i, d in enumerate(dilations):
        t[i].fill_(int(d))
    if not calls.capturing(device):
        _DIL_CACHE[key] = t
    return t


def zero_bias(device: torch.device, c_out: int) -> Tensor:
    key = (str(device), c_out)
    t = _ZEROS_CACHE.get(key)
    if t is None:
        t = torch.zeros(c_out, dtype=torch.float32, device=device)
        if not calls.capturing(device):  # see dil_tensor
            _ZEROS_CACHE[key] = t
    return t


def memory_format_of(x: Tensor) -> torch.memory_format:
    """channels_last if ``x`` is (and not also contiguous), else
    contiguous."""
    cl = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
        memory_format=torch.channels_last)
    return torch.channels_last if cl else torch.contiguous_format


def channels_last(x: Tensor) -> Tensor:
    """``x`` in channels_last (no copy if it is already): the kernels'
    gathers then read channels with vector loads."""
    return x.contiguous(memory_format=torch.channels_last)


def pack_weight(weight: Tensor, groups: int, dtype: torch.dtype) -> Tensor:
    """The forward's weight layout: [C_out, C_in/G, k, k] -> [G, k*k,
    C_in/G, C_out/G] in ``dtype`` (one copy), output channels innermost so
    a [channels, output channels] tile is read with vector loads."""
    c_out, cg, k, _ = weight.shape
    src = weight.reshape(groups, c_out // groups, cg, k * k).permute(
        0, 3, 2, 1)
    return torch.empty(src.shape, dtype=dtype,
                       device=weight.device).copy_(src)


def cols_weight(wf: Tensor) -> Tensor:
    """The backward-columns layout [G, C_out/G, k*k, C_in/G] of a
    :func:`pack_weight` result, input channels innermost."""
    return wf.permute(0, 3, 1, 2).contiguous()
