"""Fused PAD convolution as Triton kernels (optional; needs ``triton`` >= 3).

Status: the kernels are checked for correctness against the reference
(values and all gradients, fp32/fp16/bf16, NCHW and channels_last, stride 1
and 2, groups 1 and depthwise, hard path, fp32 weights with half
activations) by running them in Triton's CPU interpreter
(``TRITON_INTERPRET=1``), and every kernel variant a launch can take is
compiled for sm_80 and sm_90 by ``triton.compile`` in CI (no GPU needed;
:func:`launch_variants` lists them). They have NOT been run on a GPU yet:
their GPU correctness, speed and memory are measured by
``tools/analysis_tools/gpu_check.py`` and are still open. ``impl='auto'``
only picks them after a self-check in the running process (see
:mod:`pad_mm.ops.dispatch`).

The kernels are in :mod:`.triton_kernels`. The backward processes the
batch in chunks of images whose fp32 [pixels, k*k, C_in] buffer fits in
:func:`bwd_buffer_bytes` (at least one image at a time); ``grad_bias`` is
a torch sum.

Dtypes: the compute dtype is the input's (under autocast: the autocast
dtype, like a conv). Inside the op, the weight is cast to it (AMP keeps
fp32 parameters: fp32 weights with fp16/bf16 activations take the
tensor-core path), bias and probs to fp32; every gradient is returned in
its argument's dtype (``grad_weight`` is accumulated in fp32 and never
rounded to half for an fp32 weight). Accumulation is in fp32; fp16/bf16
tiles go to ``tl.dot`` in their own dtype (tensor cores), fp32 tiles use
TF32 iff cuDNN convs do (:func:`tf32_enabled`). float64 is not supported
(use ``'reference'``). Depthwise and grouped convs run the same kernels per
group with padded tiles: correct but not efficient.

Limits checked by :func:`supports`: Triton >= 3, CUDA compute capability
>= 8.0, every tensor < 2**31 elements (32-bit offsets), groups * k * k <=
65535 (grid z).
"""
from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import calls
from ..shapes import conv_out_size
from .base import Geometry, first_order_only, implementation
from .limits import ScopedLimit
from .triton_kernels import HAS_TRITON, blocks, interpreting, triton
from .triton_kernels import (bwd_cols_kernel, bwd_input_kernel,
                             bwd_probs_kernel, bwd_weight_kernel,
                             fwd_kernel)
from .triton_launch import (KernelVariant, Launch, cols_meta, fwd_meta,
                            gather_meta, launch, launch_variants, recording,
                            weight_meta)

__all__ = [
    'HAS_TRITON', 'pad_conv2d_triton', 'pad_conv2d_hard_triton', 'supports',
    'supports_hard', 'prefer', 'compute_dtype', 'launch_variants',
    'KernelVariant', 'BWD_BUFFER_BYTES', 'bwd_buffer_bytes',
    'bwd_buffer_limit', 'tf32_enabled', 'dil_tensor', 'Launch',
    'record_launches'
]

_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_MAX_NUMEL = 2**31 - 1  # int32 offsets inside the kernels
_MAX_GRID_YZ = 65535
#: upper bound of the backward's fp32 [pixels, k*k, C_in] buffer: the batch
#: is processed in chunks of images that fit (at least one image at a time)
BWD_BUFFER_BYTES = 256 << 20
_BUFFER_LIMIT = ScopedLimit(lambda: BWD_BUFFER_BYTES)


def bwd_buffer_bytes() -> int:
    """The backward's buffer bound in effect: :data:`BWD_BUFFER_BYTES`, or
    the innermost :func:`bwd_buffer_limit` of this thread."""
    return _BUFFER_LIMIT.current()


def bwd_buffer_limit(nbytes: int) -> AbstractContextManager[None]:
    """Within the block (this thread), the backward's fp32 buffer is at
    most ``nbytes`` (``1``: one image per chunk, to check the multi-chunk
    path)."""
    return _BUFFER_LIMIT.scope(nbytes)


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


def _dot_mode(dtype: torch.dtype) -> tuple[bool, str]:
    """(CAST: cast fp32 tiles to the compute dtype for tl.dot, PREC: the
    fp32 input precision)."""
    if interpreting():
        # the interpreter's dot is exact only in fp32
        return False, 'ieee'
    if dtype == torch.float32:
        return False, 'tf32' if tf32_enabled() else 'ieee'
    return True, 'ieee'



def _on_device(x: Tensor):
    """Launch on ``x``'s GPU (Triton launches on the current device)."""
    if x.is_cuda:
        return torch.cuda.device(x.device)
    return contextlib.nullcontext()


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


def _zero_bias(device: torch.device, c_out: int) -> Tensor:
    key = (str(device), c_out)
    t = _ZEROS_CACHE.get(key)
    if t is None:
        t = torch.zeros(c_out, dtype=torch.float32, device=device)
        if not calls.capturing(device):  # see dil_tensor
            _ZEROS_CACHE[key] = t
    return t


def record_launches(input: Tensor, weight: Tensor, bias: Tensor | None,
                    sel: Tensor, dilations: Sequence[int], stride: int = 1,
                    groups: int = 1, hard: bool = False,
                    backward: bool = True) -> list[Launch]:
    """The kernel launches of one call (and of its backward if
    ``backward``), recorded instead of run: the arguments a real call
    passes, for the static kernel report. Use ``'meta'`` tensors (no
    memory, no device); ``input`` in the compute dtype."""
    with recording() as rec:
        leaves = [t.detach().requires_grad_(backward and
                                            t.is_floating_point())
                  if t is not None else None
                  for t in (input, weight, bias, sel)]
        out = _PADTriton.apply(*leaves, tuple(dilations), stride, groups,
                               hard)
        if backward:
            diff = [t for t in leaves if t is not None and t.requires_grad]
            torch.autograd.grad(out, diff, torch.empty_like(out))
    return rec


def _like_input(x: Tensor, shape: tuple[int, ...],
                dtype: torch.dtype) -> Tensor:
    """Empty tensor in the memory format of ``x`` (channels_last or not)."""
    cl = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
        memory_format=torch.channels_last)
    fmt = torch.channels_last if cl else torch.contiguous_format
    return torch.empty(shape, dtype=dtype, device=x.device,
                       memory_format=fmt)


def _forward(x: Tensor, weight: Tensor, bias: Tensor, sel: Tensor,
             dil: Tensor, stride: int, groups: int, hard: bool) -> Tensor:
    """x [N, C, H, W] and weight in the compute dtype, bias fp32 [C_out],
    sel: fp32 probs [N, D, H_out, W_out] or int64 index [N, H_out, W_out]."""
    n, c, h, w = x.shape
    c_out, cg, k, _ = weight.shape
    h_out, w_out = sel.shape[-2:]
    npix = n * h_out * w_out
    out = _like_input(x, (n, c_out, h_out, w_out), x.dtype)
    if hard:
        psum = bias  # unused
        sp = (sel.stride(0), 0, sel.stride(1), sel.stride(2))
    else:
        psum = sel.sum(1).contiguous()
        sp = sel.stride()
    cast, prec = _dot_mode(x.dtype)
    blk = blocks()
    grid = (triton.cdiv(npix, blk['BM']),
            triton.cdiv(c_out // groups, blk['BN']), groups)
    launch(fwd_kernel, grid, x, weight, bias, sel, psum, dil, out, npix, h,
           w, h_out, w_out, c_out // groups, cg, *x.stride(), *sp,
           *out.stride(),
           **fwd_meta(cast, prec, hard, stride, k, dil.numel(), blk))
    return out


def _backward(need_x: bool, need_w: bool, need_p: bool, grad_out: Tensor,
              x: Tensor, weight: Tensor, probs: Tensor, dil: Tensor,
              stride: int, groups: int):
    """grad_input (x dtype), grad_weight (fp32), grad_probs (fp32)."""
    n, c, h, w = x.shape
    c_out, cg, k, _ = weight.shape
    d_count = probs.shape[1]
    h_out, w_out = probs.shape[-2:]
    kk = k * k
    cast, prec = _dot_mode(x.dtype)
    blk = blocks()
    gx = gw = gp = None
    if need_x or need_p:
        # the fp32 [pixels, k*k, C] buffer, a chunk of images at a time
        per_image = h_out * w_out * kk * c * 4
        chunk = max(1, min(n, bwd_buffer_bytes() // max(per_image, 1)))
        gcols = torch.empty(chunk * h_out * w_out, kk * c,
                            dtype=torch.float32, device=x.device)
        if need_x:
            gx = _like_input(x, tuple(x.shape), x.dtype)
            psum = probs.sum(1).contiguous()
        if need_p:
            gp = torch.empty(n, d_count, h_out, w_out, dtype=torch.float32,
                             device=x.device)
        for n0 in range(0, n, chunk):
            n1 = min(n, n0 + chunk)
            go_c = grad_out[n0:n1]
            npix = (n1 - n0) * h_out * w_out
            grid = (triton.cdiv(npix, blk['BM']),
                    triton.cdiv(cg * kk, blk['BN']), groups)
            launch(bwd_cols_kernel, grid, go_c, weight, gcols, npix, h_out,
                   w_out, c_out // groups, cg, c, *go_c.stride(),
                   **cols_meta(cast, prec, k, blk))
            gmeta = gather_meta(stride, k, d_count, blk)
            if need_x:
                gx_c, p_c = gx[n0:n1], probs[n0:n1]
                ninp = (n1 - n0) * h * w
                grid = (triton.cdiv(ninp, blk['BM']),
                        triton.cdiv(c, blk['BN']))
                launch(bwd_input_kernel, grid, gcols, p_c, psum[n0:n1], dil,
                       gx_c, ninp, c, h, w, h_out, w_out, *p_c.stride(),
                       *gx_c.stride(), **gmeta)
            if need_p:
                x_c = x[n0:n1]
                grid = (triton.cdiv(npix, blk['BM']), )
                launch(bwd_probs_kernel, grid, gcols, x_c, dil, gp[n0:n1],
                       npix, c, h, w, h_out, w_out, *x_c.stride(), **gmeta)
        del gcols
    if need_w:
        npix = n * h_out * w_out
        gw = torch.empty(weight.shape, dtype=torch.float32, device=x.device)
        grid = (triton.cdiv(c_out // groups, blk['BM']),
                triton.cdiv(cg, blk['BN']), kk * groups)
        launch(bwd_weight_kernel, grid, grad_out, x, probs, dil, gw, npix, h,
               w, h_out, w_out, c_out // groups, cg, *grad_out.stride(),
               *x.stride(), *probs.stride(),
               **weight_meta(cast, prec, stride, k, d_count, blk))
    return gx, gw, gp


class _PADTriton(torch.autograd.Function):
    """Soft (``hard=False``: ``sel`` = probs) and hard (``sel`` = index)
    PAD; the weight is cast to the input's dtype inside, bias and probs to
    fp32, and every gradient goes back in its argument's dtype."""

    @staticmethod
    def forward(ctx, x, weight, bias, sel, dilations, stride, groups, hard):
        with _on_device(x):
            w = weight.to(x.dtype).contiguous()
            b = (bias.float().contiguous() if bias is not None else
                 _zero_bias(x.device, weight.shape[0]))
            s = sel.long() if hard else sel.float()
            dil = dil_tensor(dilations, x.device)
            out = _forward(x, w, b, s, dil, stride, groups, hard)
        ctx.save_for_backward(x, w, s)
        ctx.conf = (dilations, stride, groups, hard, weight.dtype,
                    None if bias is None else bias.dtype, sel.dtype)
        return out

    @staticmethod
    @first_order_only  # no graph of the gradients: no double backward
    def backward(ctx, grad_out):
        x, w, s = ctx.saved_tensors
        dilations, stride, groups, hard, w_dtype, b_dtype, p_dtype = ctx.conf
        need_x, need_w, need_b, need_p = ctx.needs_input_grad[:4]
        need_p = need_p and not hard
        gx = gw = gb = gp = None
        with _on_device(x):
            dil = dil_tensor(dilations, x.device)
            # the gradient of the hard conv is the soft one at one-hot probs
            probs = F.one_hot(s, len(dilations)).permute(0, 3, 1, 2).float() \
                if hard else s
            if need_x or need_w or need_p:
                gx, gw, gp = _backward(need_x, need_w, need_p, grad_out, x,
                                       w, probs, dil, stride, groups)
            if need_b and b_dtype is not None:
                gb = grad_out.float().sum((0, 2, 3)).to(b_dtype)
        gw = None if gw is None else gw.to(w_dtype)
        gp = None if gp is None else gp.to(p_dtype)
        return gx, gw, gb, gp, None, None, None, None


def _apply(input: Tensor, weight: Tensor, bias: Tensor | None, sel: Tensor,
           geometry: Geometry, hard: bool) -> Tensor:
    if not HAS_TRITON:
        raise RuntimeError("impl='triton' needs the triton package")
    dtype = compute_dtype(input, weight)
    if dtype is None:
        raise TypeError(
            "impl='triton' computes in float32/float16/bfloat16 with the "
            'weight in that dtype or float32, got input '
            f'{input.dtype} and weight {weight.dtype}')
    dev = input.device.type
    # like autocast's conv: run in the autocast dtype
    input = input.to(dtype)
    with torch.autocast(dev, enabled=False):
        return _PADTriton.apply(input, weight, bias, sel, *geometry, hard)


@implementation
def pad_conv2d_triton(input: Tensor, weight: Tensor, bias: Tensor | None,
                      probs: Tensor, geometry: Geometry) -> Tensor:
    """Soft PAD (:class:`~.base.PADImpl`) in fused Triton kernels: the
    output is in the memory format of ``input`` and the
    :func:`compute_dtype`; the weight may be float32 with half inputs;
    every gradient is in its argument's dtype."""
    return _apply(input, weight, bias, probs, geometry, False)


@implementation
def pad_conv2d_hard_triton(input: Tensor, weight: Tensor, bias: Tensor | None,
                           index: Tensor, geometry: Geometry) -> Tensor:
    """Hard PAD (:class:`~.base.PADImpl`, ``sel`` = index) in Triton: each
    pixel gathers only its chosen dilation; as :func:`pad_conv2d_triton`
    otherwise."""
    return _apply(input, weight, bias, index, geometry, True)
