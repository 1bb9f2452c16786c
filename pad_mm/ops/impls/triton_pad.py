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

The kernels are in :mod:`.triton_kernels`. Inside the op, the input and
``grad_out`` are made channels_last (a copy only if they are not) and the
weight is repacked once per call (:func:`pack_weight`); the output and
``grad_input`` are in the input's memory format. The backward forms
``grad_input`` by one of two paths (:data:`BWD_INPUT_PATHS`): from a
[pixels, k*k, C_in] buffer in the compute dtype, chunks of images at a
time, when one image's buffer and ``grad_probs``' fp32 partial sums fit in
:func:`bwd_buffer_bytes`; otherwise by one implicit GEMM over
``grad_out`` with no buffer. ``grad_probs``' partial sums go in chunks of
images that fit the same bound (at least one image); ``grad_bias`` is a
torch sum.

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
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Geometry, first_order_only, implementation
from .limits import ScopedLimit
from .triton_kernels import HAS_TRITON, triton
from .triton_support import compute_dtype, prefer, supports, supports_hard
from .triton_tiles import blocks
from .triton_kernels import (bwd_cols_kernel, bwd_input_gemm_kernel,
                             bwd_input_kernel, bwd_probs_kernel,
                             bwd_weight_kernel, fwd_kernel)
from .triton_layout import (channels_last, cols_weight, dil_tensor, dot_mode,
                            memory_format_of, pack_weight, tf32_enabled,
                            zero_bias)
from .triton_launch import (KernelVariant, Launch, cols_meta, fwd_meta,
                            gather_meta, input_gemm_meta, launch,
                            launch_variants, probs_meta, recording,
                            target_capability, weight_meta)

__all__ = [
    'HAS_TRITON', 'pad_conv2d_triton', 'pad_conv2d_hard_triton', 'supports',
    'supports_hard', 'prefer', 'compute_dtype', 'launch_variants',
    'KernelVariant', 'BWD_BUFFER_BYTES', 'BWD_BUFFER_ENV',
    'BWD_INPUT_PATHS', 'bwd_buffer_bytes', 'bwd_buffer_limit',
    'bwd_input_path', 'bwd_input_path_current', 'bwd_scope', 'tf32_enabled',
    'dil_tensor', 'Launch', 'record_launches', 'pack_weight'
]

#: upper bound of the backward's buffers (the [pixels, k*k, C_in] columns
#: of grad_input's 'buffer' path in the compute dtype, and the fp32 partial
#: sums of grad_probs): the batch is processed in chunks of images that
#: fit; where not even one image's buffer fits, grad_input takes the
#: 'gemm' path (no buffer). ``PAD_MM_BWD_BUFFER_MB`` overrides it (``0``:
#: always the 'gemm' path)
BWD_BUFFER_BYTES = 128 << 20
BWD_BUFFER_ENV = 'PAD_MM_BWD_BUFFER_MB'
#: how the backward forms grad_input: ``'buffer'`` (a GEMM per tap into
#: the [pixels, k*k, C_in] buffer, then a weighted gather; one image's
#: buffer at a time at least), ``'gemm'`` (one implicit GEMM over
#: grad_out mixed at the source pixels: no buffer, the mixing redone per
#: input-channel tile), ``'auto'`` (``'buffer'`` when one image's buffer
#: fits :func:`bwd_buffer_bytes`, else ``'gemm'``)
BWD_INPUT_PATHS = ('auto', 'buffer', 'gemm')


def _default_buffer_bytes() -> int:
    env = os.environ.get(BWD_BUFFER_ENV, '').strip()
    if not env:
        return BWD_BUFFER_BYTES
    try:
        mib = float(env)
    except ValueError:
        mib = float('nan')
    if not mib >= 0 or mib == float('inf'):
        raise ValueError(f'{BWD_BUFFER_ENV} must be a number of MiB >= 0 '
                         f'(0: no backward buffer), got {env!r}')
    return int(mib * 2**20)


_BUFFER_LIMIT = ScopedLimit(_default_buffer_bytes)
_PATH = threading.local()


def bwd_buffer_bytes() -> int:
    """The backward's buffer bound in effect: the innermost
    :func:`bwd_buffer_limit` of this thread, else ``PAD_MM_BWD_BUFFER_MB``
    (MiB) if set, else :data:`BWD_BUFFER_BYTES`."""
    return _BUFFER_LIMIT.current()


def bwd_buffer_limit(nbytes: int) -> AbstractContextManager[None]:
    """Within the block (this thread), the backward's buffers are at
    most ``nbytes`` (``1``: grad_input takes the 'gemm' path and
    grad_probs' partial sums go one image per chunk; with
    :func:`bwd_input_path` ``('buffer')``: one image per chunk)."""
    return _BUFFER_LIMIT.scope(nbytes)


def bwd_input_path_current() -> str:
    """The :data:`BWD_INPUT_PATHS` entry in effect for this thread."""
    stack = getattr(_PATH, 'stack', None)
    return stack[-1] if stack else 'auto'


@contextlib.contextmanager
def bwd_input_path(path: str) -> Iterator[None]:
    """Within the block (this thread), the backward forms grad_input by
    ``path``, one of :data:`BWD_INPUT_PATHS`."""
    if path not in BWD_INPUT_PATHS:
        raise ValueError(f'path must be one of {BWD_INPUT_PATHS}, got '
                         f'{path!r}')
    stack = getattr(_PATH, 'stack', None)
    if stack is None:
        stack = _PATH.stack = []
    stack.append(path)
    try:
        yield
    finally:
        stack.pop()


@contextlib.contextmanager
def bwd_scope(path: str = 'auto', one_image: bool = False
              ) -> Iterator[None]:
    """Within the block (this thread): :func:`bwd_input_path` ``(path)``
    and, with ``one_image``, :func:`bwd_buffer_limit` ``(1)`` (the
    backward's buffers one image per chunk, as at production sizes)."""
    with bwd_input_path(path), (bwd_buffer_limit(1) if one_image else
                                contextlib.nullcontext()):
        yield


def _on_device(x: Tensor):
    """Launch on ``x``'s GPU (Triton launches on the current device)."""
    if x.is_cuda:
        return torch.cuda.device(x.device)
    return contextlib.nullcontext()


def record_launches(input: Tensor, weight: Tensor, bias: Tensor | None,
                    sel: Tensor, dilations: Sequence[int], stride: int = 1,
                    groups: int = 1, hard: bool = False,
                    backward: bool = True,
                    cap: int | None = None) -> list[Launch]:
    """The kernel launches of one call (and of its backward if
    ``backward``), recorded instead of run: the arguments a real call
    passes on a GPU of compute capability ``cap`` (None: sm_90), for the
    static kernel report. Use ``'meta'`` tensors (no memory, no device);
    ``input`` in the compute dtype."""
    with recording(cap) as rec:
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


def _forward(x: Tensor, wf: Tensor, bias: Tensor, sel: Tensor,
             dil: Tensor, stride: int, groups: int, hard: bool,
             fmt: torch.memory_format) -> Tensor:
    """x [N, C, H, W] (channels_last) and the packed weight ``wf``
    (:func:`pack_weight`) in the compute dtype, bias fp32 [C_out], sel:
    fp32 probs [N, D, H_out, W_out] or int64 index [N, H_out, W_out]; the
    output in memory format ``fmt``."""
    n, c, h, w = x.shape
    g, kk, cg, cog = wf.shape
    k = int(round(kk**0.5))
    c_out = g * cog
    h_out, w_out = sel.shape[-2:]
    npix = n * h_out * w_out
    out = torch.empty((n, c_out, h_out, w_out), dtype=x.dtype,
                      device=x.device, memory_format=fmt)
    if hard:
        psum = bias  # unused
        sp = (sel.stride(0), 0, sel.stride(1), sel.stride(2))
    else:
        psum = sel.sum(1).contiguous()
        sp = sel.stride()
    cast, prec = dot_mode(x.dtype)
    blk = blocks(target_capability(x))['fwd']
    grid = (triton.cdiv(npix, blk['BM']), triton.cdiv(cog, blk['BN']),
            groups)
    launch(fwd_kernel, grid, x, wf, bias, sel, psum, dil, out, npix, h,
           w, h_out, w_out, cog, cg, *x.stride(), *sp, *out.stride(),
           **fwd_meta(cast, prec, hard, stride, k, dil.numel(), blk))
    return out


def _backward(need_x: bool, need_w: bool, need_p: bool, grad_out: Tensor,
              x: Tensor, wf: Tensor, probs: Tensor, dil: Tensor,
              stride: int, groups: int, fmt: torch.memory_format,
              w_dtype: torch.dtype = torch.float32):
    """grad_input (x dtype, memory format ``fmt``), grad_weight
    ([C_out, C_in/G, k, k] in ``w_dtype``, accumulated in fp32),
    grad_probs (fp32); x and grad_out in channels_last, ``wf`` from
    :func:`pack_weight`."""
    n, c, h, w = x.shape
    g, kk, cg, cog = wf.shape
    k = int(round(kk**0.5))
    c_out = g * cog
    d_count = probs.shape[1]
    h_out, w_out = probs.shape[-2:]
    cast, prec = dot_mode(x.dtype)
    blk = blocks(target_capability(x))
    gx = gw = gp = None
    wc = cols_weight(wf) if need_x or need_p else None
    bc = blk['cols']
    tiles = groups * triton.cdiv(cg, bc['BN'])  # partial sums per pixel
    # per image: the [pixels, k*k, C] buffer in the compute dtype (the
    # 'buffer' path of grad_input) and the fp32 partial sums of grad_probs
    buf_image = h_out * w_out * kk * c * x.element_size()
    part_image = tiles * d_count * h_out * w_out * 4 * need_p
    bound = bwd_buffer_bytes()
    path = bwd_input_path_current()
    use_buf = need_x and (path == 'buffer' or (
        path == 'auto' and buf_image + part_image <= bound))
    if need_x:
        gx = torch.empty(x.shape, dtype=x.dtype, device=x.device,
                         memory_format=fmt)
        psum = probs.sum(1).contiguous()
    if use_buf or need_p:
        per_image = buf_image * use_buf + part_image
        chunk = max(1, min(n, bound // max(per_image, 1)))
        rows = chunk * h_out * w_out
        gcols = torch.empty(rows if use_buf else 0, kk * c, dtype=x.dtype,
                            device=x.device)
        part = torch.empty(tiles if need_p else 0, chunk * d_count * h_out *
                           w_out, dtype=torch.float32, device=x.device)
        if need_p:
            gp = torch.empty(n, d_count, h_out, w_out, dtype=torch.float32,
                             device=x.device)
        for n0 in range(0, n, chunk):
            n1 = min(n, n0 + chunk)
            go_c, x_c = grad_out[n0:n1], x[n0:n1]
            npix = (n1 - n0) * h_out * w_out
            e = npix * d_count
            grid = (triton.cdiv(npix, bc['BM']), triton.cdiv(cg, bc['BN']),
                    groups)
            launch(bwd_cols_kernel, grid, go_c, wc, x_c, dil, gcols, part,
                   npix, h, w, h_out, w_out, cog, cg, c, e, *go_c.stride(),
                   *x_c.stride(), **cols_meta(cast, prec, stride, k, d_count,
                                              use_buf, need_p, bc))
            if need_p:
                bp = blk['probs']
                launch(bwd_probs_kernel, (triton.cdiv(e, bp['BLOCK']), ),
                       part, gp[n0:n1], e, tiles, **probs_meta(bp))
            if use_buf:
                gx_c, p_c = gx[n0:n1], probs[n0:n1]
                ninp = (n1 - n0) * h * w
                bi = blk['input']
                grid = (triton.cdiv(ninp, bi['BM']), triton.cdiv(c, bi['BN']))
                launch(bwd_input_kernel, grid, gcols, p_c, psum[n0:n1], dil,
                       gx_c, ninp, c, h, w, h_out, w_out, *p_c.stride(),
                       *gx_c.stride(), **gather_meta(stride, k, d_count, bi))
        del gcols, part
    if need_x and not use_buf:
        # grad_input as one implicit GEMM over grad_out: no buffer
        bi = blk['input_gemm']
        grid = (triton.cdiv(n * h * w, bi['BM']), triton.cdiv(cg, bi['BN']),
                groups)
        launch(bwd_input_gemm_kernel, grid, grad_out, wc, probs, psum, dil,
               gx, n * h * w, h, w, h_out, w_out, cog, cg,
               *grad_out.stride(), *probs.stride(), *gx.stride(),
               **input_gemm_meta(cast, prec, stride, k, d_count, bi))
    del wc  # not held while grad_weight is formed
    if need_w:
        npix = n * h_out * w_out
        bw = blk['weight']
        gw = torch.empty((c_out, cg, k, k), dtype=w_dtype, device=x.device)
        grid = (triton.cdiv(cog, bw['BM']), triton.cdiv(cg, bw['BN']),
                kk * groups)
        launch(bwd_weight_kernel, grid, grad_out, x, probs, dil, gw, npix, h,
               w, h_out, w_out, cog, cg, *grad_out.stride(), *x.stride(),
               *probs.stride(),
               **weight_meta(cast, prec, stride, k, d_count, bw))
    return gx, gw, gp


class _PADTriton(torch.autograd.Function):
    """Soft (``hard=False``: ``sel`` = probs) and hard (``sel`` = index)
    PAD; the weight is cast to the input's dtype inside, bias and probs to
    fp32, and every gradient goes back in its argument's dtype (the
    weight's also in its memory format)."""

    @staticmethod
    def forward(ctx, x, weight, bias, sel, dilations, stride, groups, hard):
        fmt = memory_format_of(x)
        with _on_device(x):
            xc = channels_last(x)
            wf = pack_weight(weight, groups, x.dtype)
            b = (bias.float().contiguous() if bias is not None else
                 zero_bias(x.device, weight.shape[0]))
            s = sel.long() if hard else sel.float()
            dil = dil_tensor(dilations, x.device)
            out = _forward(xc, wf, b, s, dil, stride, groups, hard, fmt)
        ctx.save_for_backward(xc, wf, s)
        ctx.conf = (dilations, stride, groups, hard, weight.dtype,
                    None if bias is None else bias.dtype, sel.dtype, fmt,
                    memory_format_of(weight))
        return out

    @staticmethod
    @first_order_only  # no graph of the gradients: no double backward
    def backward(ctx, grad_out):
        x, wf, s = ctx.saved_tensors
        (dilations, stride, groups, hard, w_dtype, b_dtype, p_dtype,
         fmt, w_fmt) = ctx.conf
        need_x, need_w, need_b, need_p = ctx.needs_input_grad[:4]
        need_p = need_p and not hard
        gx = gw = gb = gp = None
        with _on_device(x):
            dil = dil_tensor(dilations, x.device)
            # the gradient of the hard conv is the soft one at one-hot probs
            probs = F.one_hot(s, len(dilations)).permute(0, 3, 1, 2).float() \
                if hard else s
            if need_x or need_w or need_p:
                gx, gw, gp = _backward(need_x, need_w, need_p,
                                       channels_last(grad_out), x, wf,
                                       probs, dil, stride, groups, fmt,
                                       w_dtype)
            if need_b and b_dtype is not None:
                gb = grad_out.sum((0, 2, 3), dtype=torch.float32).to(b_dtype)
        # in the parameter's dtype and memory format (a channels_last
        # weight's .grad keeps its strides: DDP's buckets expect them)
        gw = None if gw is None else gw.to(
            w_dtype, memory_format=w_fmt)
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
