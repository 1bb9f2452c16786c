"""Hard PAD on the CPU: only the chosen dilation is computed per pixel.

``out[n, :, p]`` is the conv at pixel ``p`` with dilation
``dilations[index[n, p]]``. Every strategy below computes a pixel as a
gather of its k x k taps followed by one GEMM row:

* the input becomes channels-last rows and each pixel's k*k tap rows at
  its own dilation are looked up (:mod:`.taps`; the eager paths take them
  from a table cached per geometry: one gather instead of a dozen small
  index ops, whose fixed cost per op weighs on 1 ms convs);
* the taps of up to :func:`chunk_bytes` worth of pixels are gathered with
  ``index_select`` into a reused buffer ``[M, k*k*C_in]`` and multiplied
  by the weight as a ``[C_out, k*k*C_in]`` matrix (columns in
  (kernel row, kernel column, channel) order).

The sparse strategy in float32 inference on an NCHW input skips the rows:
the compiled helpers of :mod:`.native` (once built and checked in this
process) gather the differing pixels' taps straight from NCHW into the
buffer and write the results back into the NCHW output, each in one
multi-threaded pass.

In inference (no gradient needed), on the CPU, in float32 and with
``groups == 1``, the GEMM runs oneDNN's linear on a weight reordered once
into oneDNN's blocked layout and cached per weight tensor
(:func:`packed_weight`; dropped when the weight changes in place or is freed).
``F.conv2d`` reorders its weight on every call, which dominates small
maps (a 512 -> 512 3x3 conv at 8x8 spends about half its time there), so
the full strategy can be faster than the ``F.conv2d`` it is compared
with; ``benchmark_pad.py`` also times a plain conv on a packed weight,
the fair baseline for that. The linear is an internal torch op: it is
checked once per process against ``F.linear`` (:func:`packed_gemm_ok`)
and not used if it is missing or wrong. Otherwise the GEMM is
``F.linear``, or with groups a grouped conv over the batch of gathered
k x k patches.

Two strategies, chosen by the share of pixels whose index differs from
the dominant one (the most frequent in the batch) and by the map size
(:func:`pad_conv2d_hard_im2col`):

* ``sparse``: a plain ``F.conv2d`` at the dominant dilation for every
  pixel, then the differing pixels are recomputed and written over it;
* ``full``: every pixel is computed by the gather + GEMM.

No differing pixel at all: exactly one plain conv.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
import weakref
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from . import native as _native
from ..shapes import pad_padding
from .base import Geometry, implementation
from .limits import ScopedLimit
from .taps import (all_tap_rows_index, gemm_matrix, is_channels_last,
                   tap_rows, tap_rows_index, tap_table)

# taps(s, e, buf) -> the taps of pixels s..e (see _TapGemm.__call__)
TapSource = Callable[[int, int, Tensor | None], Tensor]

__all__ = [
    'pad_conv2d_hard_im2col', 'hard_sparse', 'hard_full', 'packed_gemm_ok',
    'packed_weight', 'onednn_linear_ops', 'reset_packed_gemm_check',
    'chunk_bytes', 'gemm_chunk_bytes', 'SPARSE_MAX_SHARE',
    'SPARSE_MIN_PIXELS', 'CHUNK_BYTES', 'STRATEGIES'
]

# ``strategy='auto'`` runs the sparse strategy up to this share of the
# batch's pixels differing from the dominant index, on maps of at least
# SPARSE_MIN_PIXELS output pixels per image (the full one otherwise: on
# small maps the plain conv's per-call weight reorder costs more than the
# full strategy's gather). Measured on the CPU with
# ``benchmark_pad.py --sweep-share`` (docs/advanced/performance.md,
# "Sparse hard inference").
SPARSE_MAX_SHARE = 0.15
SPARSE_MIN_PIXELS = 2048

# Bytes of gathered taps per GEMM call: a reused buffer of this size
# instead of one fresh [P, k*k*C_in] tensor (a fresh allocation of tens of
# MiB costs more in page faults than the gather itself).
CHUNK_BYTES = 1 << 23
_CHUNK = ScopedLimit(lambda: CHUNK_BYTES)


def chunk_bytes() -> int:
    """Bytes of gathered taps per GEMM call in effect: :data:`CHUNK_BYTES`,
    or the innermost :func:`gemm_chunk_bytes` of this thread."""
    return _CHUNK.current()


def gemm_chunk_bytes(nbytes: int) -> AbstractContextManager[None]:
    """Within the block (this thread), gather at most ``nbytes`` of taps
    per GEMM call (e.g. a few pixels' worth, to exercise the chunking)."""
    return _CHUNK.scope(nbytes)


# ------------------------------------------- oneDNN on packed weights ---

# id(weight) -> (weakref to it, its in-place version, packed matrix)
_PACKED: dict[int, tuple[weakref.ref, int, Tensor]] = {}
_OK: list[bool] = []  # the result of the check, once done


def onednn_linear_ops():
    """(pack, linear): oneDNN's weight reorder and linear ops of this torch
    build, None where missing."""
    mk = getattr(torch.ops, 'mkldnn', None)
    pack = getattr(mk, '_reorder_linear_weight', None)
    linear = getattr(mk, '_linear_pointwise', None)
    return pack, linear


def _check_linear() -> bool:
    """Run oneDNN's linear on a packed weight once and compare it with
    ``F.linear`` in float64 (ragged sizes: rows not a multiple of the
    packing hint, a bias, a reduction over several cache blocks)."""
    g = torch.Generator().manual_seed(0)
    pack, linear = onednn_linear_ops()
    a = torch.randn(37, 1153, generator=g)
    w = torch.randn(70, 1153, generator=g)
    b = torch.randn(70, generator=g)
    with torch.no_grad():
        got = linear(a, pack(w, 16), b, 'none', [], '')
    exp = F.linear(a.double(), w.double(), b.double())
    err = (got.double() - exp).abs().max() / exp.abs().max()
    return got.shape == exp.shape and bool(err <= 1e-4)


def reset_packed_gemm_check() -> None:
    """Forget the result of :func:`packed_gemm_ok`'s check (as in a new
    process): the next call checks again."""
    _OK.clear()


def packed_gemm_ok(dtype: torch.dtype = torch.float32) -> bool:
    """Whether oneDNN's linear on a packed weight is used for ``dtype``:
    only float32, only where this torch build has the op and it passed
    its check against ``F.linear`` in this process (checked once); otherwise
    ``F.linear`` runs."""
    if dtype != torch.float32 or not torch.backends.mkldnn.is_available():
        return False
    if not _OK:
        try:
            ok = None not in onednn_linear_ops() and _check_linear()
        except Exception:  # not in this build
            ok = False
        _OK[:] = [ok]
    return _OK[0]


def packed_weight(weight: Tensor) -> Tensor:
    """oneDNN-packed float32 :func:`gemm_matrix` of a groups=1 ``weight``
    [C_out, C_in, k, k] (a [C_out, k*k*C_in] matrix in oneDNN's blocked
    layout, the second operand of ``torch.ops.mkldnn._linear_pointwise``;
    call only where :func:`packed_gemm_ok`), cached per weight tensor;
    dropped when the weight changes in place (an optimizer step) or is
    freed. A weight created under ``torch.inference_mode`` has no version
    counter: packed anew on every call."""
    pack, _ = onednn_linear_ops()

    def make() -> Tensor:
        return pack(gemm_matrix(weight, torch.float32).contiguous(), 64)

    if weight.is_inference():
        return make()
    key = id(weight)
    hit = _PACKED.get(key)
    if hit is None or hit[0]() is not weight or hit[1] != weight._version:
        ref = weakref.ref(weight, lambda _, k=key: _PACKED.pop(k, None))
        hit = _PACKED[key] = (ref, weight._version, make())
    return hit[2]


class _TapGemm:
    """``rows`` [R, C_in] and the flat tap rows of M pixels -> [M, C_out]
    (see the module docstring)."""

    def __init__(self, weight: Tensor, bias: Tensor | None, groups: int,
                 cdt: torch.dtype, need_grad: bool) -> None:
        self.k, self.groups, self.cdt = weight.shape[-1], groups, cdt
        self.need_grad = need_grad
        self.weight = weight
        self.b = None if bias is None else bias.to(cdt)
        self.packed = self.wmat = None
        if groups == 1 and not need_grad and \
                weight.device.type == 'cpu' and packed_gemm_ok(cdt):
            self.packed = packed_weight(weight)  # cdt is float32 here

    def _rows(self, taps: Tensor, m: int) -> Tensor:
        k, g = self.k, self.groups
        if g != 1:  # the taps as a batch of k x k patches (channels-last)
            patches = taps.view(m, k, k, -1).permute(0, 3, 1, 2)
            return F.conv2d(patches, self.weight.to(self.cdt), self.b, 1,
                            0, 1, g).view(m, -1)
        a = taps.view(m, -1)
        if self.packed is not None:
            return torch.ops.mkldnn._linear_pointwise(
                a, self.packed, self.b, 'none', [], '')
        if self.wmat is None:
            self.wmat = gemm_matrix(self.weight, self.cdt)
        return F.linear(a, self.wmat, self.b)

    def __call__(self, taps: TapSource, m: int, c: int) -> Tensor:
        """The GEMM of M pixels: ``taps(s, e, buf)`` gives pixels s..e's
        taps, [(e-s)*k*k, C_in] rows (written into ``buf`` of that shape
        if given) -> [m, C_out]."""
        kk = self.k * self.k
        step = max(1, chunk_bytes() // (kk * c * self.cdt.itemsize))
        if self.need_grad or m <= step:  # autograd: no out= buffers
            return self._rows(taps(0, m, None), m)
        buf = torch.empty(step * kk, c, dtype=self.cdt,
                          device=self.weight.device)
        out = None
        for s in range(0, m, step):
            e = min(m, s + step)
            res = self._rows(taps(s, e, buf[:(e - s) * kk]), e - s)
            if out is None:
                out = res.new_empty(m, res.shape[1])
            out[s:e] = res
        return out


def _torch_taps(rows: Tensor, flat: Tensor, kk: int) -> TapSource:
    """Taps by ``index_select`` of :func:`tap_rows` rows at ``flat``."""
    def taps(s: int, e: int, buf: Tensor | None) -> Tensor:
        if buf is None:
            return rows.index_select(0, flat[s * kk:e * kk])
        return torch.index_select(rows, 0, flat[s * kk:e * kk], out=buf)
    return taps


def _native_taps(x: Tensor, pix: Tensor, dil: Tensor, h_out: int,
                 w_out: int, k: int, stride: int) -> TapSource:
    """Taps by the compiled gather, straight from NCHW ``x``."""
    c = x.shape[1]

    def taps(s: int, e: int, buf: Tensor | None) -> Tensor:
        out = x.new_empty(e - s, k * k * c) if buf is None else \
            buf.view(e - s, k * k * c)
        return _native.gather_taps(x, pix[s:e], dil[s:e], h_out, w_out, k,
                                   stride, out)
    return taps


def _use_native(input: Tensor, gemm: _TapGemm) -> bool:
    """The compiled helpers run in eager float32 CPU inference on NCHW
    inputs, once checked in this process (:func:`.native.available`);
    never in a recorded graph, which would not see them."""
    return (not gemm.need_grad and input.device.type == 'cpu'
            and input.dtype == gemm.cdt == torch.float32
            and input.is_contiguous() and not torch.jit.is_tracing()
            and not torch.compiler.is_compiling() and _native.available())



def _pixel_taps(input: Tensor, index: Tensor, dilations: Sequence[int],
                k: int, stride: int, gemm: _TapGemm, pix: Tensor | None,
                native: bool) -> TapSource:
    """The taps of the output pixels ``pix`` [M] (flat ``n*H_out*W_out +
    p``, ascending; None = all of them), by the compiled gather if
    ``native`` (:func:`_use_native`; only with ``pix``: over every pixel,
    the transpose to rows and contiguous row copies are faster than
    reading each input value k*k times strided from NCHW)."""
    n, _, h, w = input.shape
    h_out, w_out = index.shape[-2:]
    flat_index = index.reshape(-1)
    chosen = flat_index if pix is None else flat_index[pix]
    if native:
        dil = torch.tensor(dilations, device=input.device)[chosen]
        return _native_taps(input, pix, dil, h_out, w_out, k, stride)
    table = tap_table(index, dilations, k, stride, h, w)
    if table is None:
        if pix is None:
            flat = all_tap_rows_index(index, dilations, k, stride, h, w)
        else:
            p = pix % (h_out * w_out)
            dil = torch.tensor(dilations, device=input.device)[chosen]
            flat = tap_rows_index(pix // (h_out * w_out), p // w_out,
                                  p % w_out, dil, k, stride, n, h, w)
    elif pix is None:
        flat = table.gather(0, index.view(1, -1, 1).expand(1, -1, k * k))
    else:
        flat = table[chosen, pix]
    return _torch_taps(tap_rows(input, gemm.cdt), flat.reshape(-1), k * k)


def hard_sparse(input: Tensor, weight: Tensor, bias: Tensor | None,
                 index: Tensor, dilations: Sequence[int], stride: int,
                 groups: int, dom: int, gemm: _TapGemm) -> Tensor:
    """Plain conv at ``dilations[dom]``; the pixels whose index differs
    (at least one) are recomputed and written over it."""
    n, c_in = input.shape[:2]
    k = weight.shape[-1]
    d = dilations[dom]
    out = F.conv2d(input, weight, bias, stride, pad_padding(k, d), d, groups)
    pix = (index.reshape(-1) != dom).nonzero().view(-1)
    native = _use_native(input, gemm)
    taps = _pixel_taps(input, index, dilations, k, stride, gemm, pix,
                       native)
    res = gemm(taps, pix.numel(), c_in).to(out.dtype)
    planes = out.view(n, out.shape[1], -1)  # [N, C_out, H_out*W_out]
    if native and out.is_contiguous():
        _native.scatter_rows(res, pix, planes)
        return out
    per_image = index[0].numel()
    bi, pos = pix // per_image, pix % per_image
    if is_channels_last(out) or gemm.need_grad:
        # [N, H_out*W_out, C_out] view of either memory format
        planes.permute(0, 2, 1).index_put_((bi, pos), res)
        return out
    # NCHW: per image, columns of its [C_out, H_out*W_out] plane (the
    # pixels of ``nonzero`` come sorted by image)
    res_t = res.t().contiguous()
    start = 0
    for b, m in enumerate(torch.bincount(bi, minlength=n).tolist()):
        if m:
            planes[b].index_copy_(1, pos[start:start + m],
                                  res_t[:, start:start + m])
            start += m
    return out


def hard_full(input: Tensor, weight: Tensor, bias: Tensor | None,
               index: Tensor, dilations: Sequence[int], stride: int,
               gemm: _TapGemm) -> Tensor:
    """Every pixel by the gather + GEMM."""
    n, c_in = input.shape[:2]
    h_out, w_out = index.shape[-2:]
    k = weight.shape[-1]
    taps = _pixel_taps(input, index, dilations, k, stride, gemm, None,
                       False)
    res = gemm(taps, n * h_out * w_out, c_in).to(input.dtype)
    res = res.view(n, h_out * w_out, -1)
    if is_channels_last(input) or gemm.need_grad:
        out = res.view(n, h_out, w_out, -1).permute(0, 3, 1, 2)
        fmt = torch.channels_last if is_channels_last(input) else \
            torch.contiguous_format
        return out.contiguous(memory_format=fmt)  # a view if channels-last
    out = res.new_empty(n, res.shape[-1], h_out, w_out)
    for b in range(n):  # per image a 2-D transpose
        out[b].view(res.shape[-1], -1).copy_(res[b].t())
    return out


STRATEGIES = ('auto', 'sparse', 'full')


@implementation
def pad_conv2d_hard_im2col(input: Tensor,
                           weight: Tensor,
                           bias: Tensor | None,
                           index: Tensor,
                           geometry: Geometry,
                           *,
                           strategy: str = 'auto') -> Tensor:
    """Hard PAD (:class:`~.base.PADImpl`, ``sel`` = index) computing only
    the chosen dilation per pixel.

    With ``s`` the share of the batch's pixels whose index differs from the
    dominant one: ``s == 0`` runs one plain conv (any ``strategy``);
    otherwise ``strategy`` ``'sparse'`` runs :func:`hard_sparse`,
    ``'full'`` :func:`hard_full`, and ``'auto'`` the sparse one where it
    measured faster: ``s <=`` :data:`SPARSE_MAX_SHARE` on maps of at least
    :data:`SPARSE_MIN_PIXELS` output pixels per image. The output keeps
    the input's dtype and memory format.
    """
    dilations, stride, groups = geometry
    if strategy not in STRATEGIES:
        raise ValueError(f'strategy must be one of {STRATEGIES}, got '
                         f'{strategy!r}')
    counts = torch.bincount(index.reshape(-1), minlength=len(dilations))
    dom = int(counts.argmax())
    other = index.numel() - int(counts[dom])
    if other == 0:  # one dilation everywhere: a plain conv
        d = dilations[dom]
        return F.conv2d(input, weight, bias, stride,
                        pad_padding(weight.shape[-1], d), d, groups)
    need_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (input, weight, bias))
    gemm = _TapGemm(weight, bias, groups,
                    torch.promote_types(input.dtype, torch.float32),
                    need_grad)
    if strategy == 'auto':
        sparse = other <= SPARSE_MAX_SHARE * index.numel() and \
            index[0].numel() >= SPARSE_MIN_PIXELS
        strategy = 'sparse' if sparse else 'full'
    if strategy == 'sparse':
        return hard_sparse(input, weight, bias, index, dilations, stride,
                           groups, dom, gemm)
    return hard_full(input, weight, bias, index, dilations, stride, gemm)

