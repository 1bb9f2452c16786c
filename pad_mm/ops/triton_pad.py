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
:mod:`pad_mm.ops.pad_conv`).

Kernels (all implicit GEMMs; ``x`` and ``grad_out`` are read through their
strides, so NCHW and channels_last need no copy):

* forward: for each tap, the mixed input ``sum_d probs_d * x(p + off*d)``
  of a [BLOCK_M pixels, BLOCK_K channels] tile is formed in registers
  (the centre tap, identical for every dilation, is read once and scaled
  by ``sum_d probs_d``) and multiplied with the weight tile; one GEMM's
  worth of MACs in total. ``HARD=True``: each pixel gathers only its
  chosen dilation (sparse hard inference, no mixing).
* backward, per chunk of images (at most ``BWD_BUFFER_BYTES`` of buffer):
  ``grad_cols = grad_out @ W`` (a GEMM into an fp32 [pixels, k*k, C_in]
  buffer, channels innermost so the gathers below read it contiguously),
  then a gather kernel forms ``grad_input`` (weighted col2im over the
  dilations) and another ``grad_probs``. ``grad_weight`` is a GEMM of
  ``grad_out`` with the re-formed mixed input over the whole batch;
  ``grad_bias`` is a torch sum.

Dtypes: the compute dtype is the input's (under autocast: the autocast
dtype, like a conv). Inside the op, the weight is cast to it (AMP keeps
fp32 parameters: fp32 weights with fp16/bf16 activations take the
tensor-core path), bias and probs to fp32; every gradient is returned in
its argument's dtype (``grad_weight`` is accumulated in fp32 and never
rounded to half for an fp32 weight). Accumulation is in fp32; fp16/bf16
tiles go to ``tl.dot`` in their own dtype (tensor cores), fp32 tiles use
TF32 iff cuDNN convs may (``torch.backends.cudnn.conv.fp32_precision``,
or ``cudnn.allow_tf32`` on a torch without it). float64 is not supported
(use ``'reference'``). Depthwise and grouped convs run the same kernels per
group with padded tiles: correct but not efficient.

Limits checked by :func:`supports`: Triton >= 3, CUDA compute capability
>= 8.0, every tensor < 2**31 elements (32-bit offsets), groups * k * k <=
65535 (grid z).
"""
from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

try:  # optional dependency
    import triton
    import triton.language as tl
    HAS_TRITON = True
except Exception:  # pragma: no cover - depends on the environment
    triton = tl = None
    HAS_TRITON = False

__all__ = [
    'HAS_TRITON', 'pad_conv2d_triton', 'pad_conv2d_hard_triton', 'supports',
    'supports_hard', 'prefer', 'compute_dtype', 'launch_variants',
    'KernelVariant', 'BWD_BUFFER_BYTES'
]

_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_MAX_NUMEL = 2**31 - 1  # int32 offsets inside the kernels
_MAX_GRID_YZ = 65535
#: upper bound of the backward's fp32 [pixels, k*k, C_in] buffer: the batch
#: is processed in chunks of images that fit (at least one image at a time)
BWD_BUFFER_BYTES = 256 << 20
_BLOCKS = dict(BM=64, BN=64, BK=32)
_INTERPRET_BLOCKS = dict(BM=16, BN=16, BK=16)


def _interpreting() -> bool:
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


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
    elif not (_interpreting() and input.device.type == 'cpu'):
        return False
    n = input.shape[0]
    c_out, k = weight.shape[0], weight.shape[-1]
    h_out = (input.shape[2] - 1) // stride + 1
    w_out = (input.shape[3] - 1) // stride + 1
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


def _blocks() -> dict:
    # the interpreter runs every program in Python: small tiles for tests
    return dict(_INTERPRET_BLOCKS if _interpreting() else _BLOCKS)


def _allow_tf32() -> bool:
    """Whether cuDNN convs may use TF32 for fp32 (our kernels follow)."""
    conv = getattr(torch.backends.cudnn, 'conv', None)
    prec = getattr(conv, 'fp32_precision', None) if conv is not None \
        else None
    if prec is not None:
        # 'none' inherits from the cuDNN backend, then the global setting
        for parent in (torch.backends.cudnn, torch.backends):
            if prec != 'none':
                break
            prec = getattr(parent, 'fp32_precision', 'none')
        return prec != 'ieee'
    return bool(torch.backends.cudnn.allow_tf32)  # torch without the API


def _dot_mode(dtype: torch.dtype) -> tuple[bool, str]:
    """(CAST: cast fp32 tiles to the compute dtype for tl.dot, PREC: the
    fp32 input precision)."""
    if _interpreting():
        # the interpreter's dot is exact only in fp32
        return False, 'ieee'
    if dtype == torch.float32:
        return False, 'tf32' if _allow_tf32() else 'ieee'
    return True, 'ieee'


if HAS_TRITON:

    @triton.jit
    def _mma(acc, a, b, CAST: tl.constexpr, PREC: tl.constexpr):
        # acc [M, N] fp32 += a [M, K] (fp32 mixed) @ b [K, N] (compute dtype)
        if CAST:
            return tl.dot(a.to(b.dtype), b, acc)
        return tl.dot(a, b.to(tl.float32), acc, input_precision=PREC)

    @triton.jit
    def _split(rm, H, W):
        # flat pixel index over [N, H, W] -> (n, pixel in the image, row,
        # column)
        n = rm // (H * W)
        pix = rm % (H * W)
        return n, pix, pix // W, pix % W

    @triton.jit
    def _tap_offset(tap, K: tl.constexpr):
        # tap t of a K x K kernel -> (row, column) offset from the centre
        return tap // K - K // 2, tap % K - K // 2

    @triton.jit
    def _inside(ih, iw, H, W):
        return (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)

    @triton.jit
    def _fwd_kernel(x_ptr, w_ptr, b_ptr, p_ptr, psum_ptr, dil_ptr, out_ptr,
                    NP, H, W, HO, WO, COG, CG, sxn, sxc, sxh, sxw, spn, spd,
                    sph, spw, son, soc, soh, sow,
                    STRIDE: tl.constexpr, K: tl.constexpr, D: tl.constexpr,
                    HARD: tl.constexpr, CAST: tl.constexpr,
                    PREC: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                    BK: tl.constexpr):
        # out[m, g*COG + o] = sum_{tap, c} X[m, tap, c] * W[g*COG + o, c, tap]
        # + b; X mixes the dilations (HARD: gathers the chosen one)
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        g = tl.program_id(2)
        rm = pid_m * BM + tl.arange(0, BM)
        m_mask = rm < NP
        n, pix, oh, ow = _split(rm, HO, WO)
        ro = pid_n * BN + tl.arange(0, BN)
        o_mask = ro < COG
        co = g * COG + ro
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        if HARD:
            idx = tl.load(p_ptr + n * spn + oh * sph + ow * spw, mask=m_mask,
                          other=0)
            drow = tl.load(dil_ptr + idx, mask=m_mask, other=1)
        else:
            psum = tl.load(psum_ptr + rm, mask=m_mask, other=0.)
        for tap in range(K * K):
            kh, kw = _tap_offset(tap, K)
            for c0 in range(0, CG, BK):
                rk = c0 + tl.arange(0, BK)
                k_mask = rk < CG
                ci = g * CG + rk
                xoff = n[:, None] * sxn + ci[None, :] * sxc
                if HARD:
                    ih = oh * STRIDE + kh * drow
                    iw = ow * STRIDE + kw * drow
                    ok = m_mask & _inside(ih, iw, H, W)
                    a = tl.load(x_ptr + xoff + ih[:, None] * sxh +
                                iw[:, None] * sxw,
                                mask=ok[:, None] & k_mask[None, :],
                                other=0.).to(tl.float32)
                elif tap == (K * K) // 2:  # centre: same for every dilation
                    ih = oh * STRIDE
                    iw = ow * STRIDE
                    a = tl.load(x_ptr + xoff + ih[:, None] * sxh +
                                iw[:, None] * sxw,
                                mask=m_mask[:, None] & k_mask[None, :],
                                other=0.).to(tl.float32) * psum[:, None]
                else:
                    a = tl.zeros((BM, BK), dtype=tl.float32)
                    for di in range(D):
                        d = tl.load(dil_ptr + di)
                        ih = oh * STRIDE + kh * d
                        iw = ow * STRIDE + kw * d
                        ok = m_mask & _inside(ih, iw, H, W)
                        xv = tl.load(x_ptr + xoff + ih[:, None] * sxh +
                                     iw[:, None] * sxw,
                                     mask=ok[:, None] & k_mask[None, :],
                                     other=0.).to(tl.float32)
                        pv = tl.load(p_ptr + n * spn + di * spd + oh * sph +
                                     ow * spw, mask=m_mask, other=0.)
                        a += xv * pv[:, None]
                wv = tl.load(w_ptr + co[None, :] * (CG * K * K) +
                             rk[:, None] * (K * K) + tap,
                             mask=k_mask[:, None] & o_mask[None, :], other=0.)
                acc = _mma(acc, a, wv, CAST, PREC)
        acc += tl.load(b_ptr + co, mask=o_mask, other=0.)[None, :]
        tl.store(out_ptr + n[:, None] * son + co[None, :] * soc +
                 oh[:, None] * soh + ow[:, None] * sow,
                 acc.to(out_ptr.dtype.element_ty),
                 mask=m_mask[:, None] & o_mask[None, :])

    @triton.jit
    def _bwd_cols_kernel(go_ptr, w_ptr, g_ptr, NP, HO, WO, COG, CG, C,
                         sgn, sgc, sgh, sgw,
                         K: tl.constexpr, CAST: tl.constexpr,
                         PREC: tl.constexpr, BM: tl.constexpr,
                         BN: tl.constexpr, BK: tl.constexpr):
        # grad_cols[m, t, g*CG + c] = sum_o grad_out[m, g*COG + o]
        #                              * W[g*COG + o, c, t]
        # (columns j = t*CG + c within the group; C channels innermost)
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        g = tl.program_id(2)
        rm = pid_m * BM + tl.arange(0, BM)
        m_mask = rm < NP
        n, pix, oh, ow = _split(rm, HO, WO)
        rj = pid_n * BN + tl.arange(0, BN)
        j_mask = rj < CG * (K * K)
        t = rj // CG
        c = rj % CG
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for o0 in range(0, COG, BK):
            ro = o0 + tl.arange(0, BK)
            o_mask = ro < COG
            co = g * COG + ro
            a = tl.load(go_ptr + n[:, None] * sgn + co[None, :] * sgc +
                        oh[:, None] * sgh + ow[:, None] * sgw,
                        mask=m_mask[:, None] & o_mask[None, :],
                        other=0.).to(tl.float32)
            b = tl.load(w_ptr + co[:, None] * (CG * K * K) +
                        c[None, :] * (K * K) + t[None, :],
                        mask=o_mask[:, None] & j_mask[None, :], other=0.)
            acc = _mma(acc, a, b, CAST, PREC)
        tl.store(g_ptr + rm.to(tl.int64)[:, None] * (C * K * K) +
                 t[None, :] * C + g * CG + c[None, :],
                 acc, mask=m_mask[:, None] & j_mask[None, :])

    @triton.jit
    def _bwd_input_kernel(gc_ptr, p_ptr, psum_ptr, dil_ptr, gx_ptr, NI, C, H,
                          W, HO, WO, spn, spd, sph, spw, sxn, sxc, sxh, sxw,
                          STRIDE: tl.constexpr, K: tl.constexpr,
                          D: tl.constexpr, BM: tl.constexpr,
                          BN: tl.constexpr):
        # grad_x[n, c, ih, iw] = sum_{d, t} probs[n, d, p] * grad_cols[p, t, c]
        # over the output pixels p with p*s + off_t*d = (ih, iw)
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        rm = pid_m * BM + tl.arange(0, BM)  # input pixels
        m_mask = rm < NI
        n, pix, ih, iw = _split(rm, H, W)
        rc = pid_n * BN + tl.arange(0, BN)
        c_mask = rc < C
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for tap in range(K * K):
            kh, kw = _tap_offset(tap, K)
            if tap == (K * K) // 2:
                ok = m_mask & (ih % STRIDE == 0) & (iw % STRIDE == 0)
                oh = ih // STRIDE
                ow = iw // STRIDE
                ok = ok & (oh < HO) & (ow < WO)
                m = (n * (HO * WO) + oh * WO + ow).to(tl.int64)
                pv = tl.load(psum_ptr + m, mask=ok, other=0.)
                gv = tl.load(gc_ptr + m[:, None] * (C * K * K) + tap * C +
                             rc[None, :],
                             mask=ok[:, None] & c_mask[None, :], other=0.)
                acc += gv * pv[:, None]
            else:
                for di in range(D):
                    d = tl.load(dil_ptr + di)
                    th = ih - kh * d
                    tw = iw - kw * d
                    ok = m_mask & (th >= 0) & (tw >= 0) & (
                        th % STRIDE == 0) & (tw % STRIDE == 0)
                    oh = th // STRIDE
                    ow = tw // STRIDE
                    ok = ok & (oh < HO) & (ow < WO)
                    oh = tl.where(ok, oh, 0)
                    ow = tl.where(ok, ow, 0)
                    m = (n * (HO * WO) + oh * WO + ow).to(tl.int64)
                    pv = tl.load(p_ptr + n * spn + di * spd + oh * sph +
                                 ow * spw, mask=ok, other=0.)
                    gv = tl.load(gc_ptr + m[:, None] * (C * K * K) +
                                 tap * C + rc[None, :],
                                 mask=ok[:, None] & c_mask[None, :], other=0.)
                    acc += gv * pv[:, None]
        tl.store(gx_ptr + n[:, None] * sxn + rc[None, :] * sxc +
                 ih[:, None] * sxh + iw[:, None] * sxw,
                 acc.to(gx_ptr.dtype.element_ty),
                 mask=m_mask[:, None] & c_mask[None, :])

    @triton.jit
    def _bwd_probs_kernel(gc_ptr, x_ptr, dil_ptr, gp_ptr, NP, C, H, W, HO,
                          WO, sxn, sxc, sxh, sxw, STRIDE: tl.constexpr,
                          K: tl.constexpr, D: tl.constexpr, BM: tl.constexpr,
                          BN: tl.constexpr):
        # grad_probs[n, d, p] = sum_{c, t} grad_cols[p, t, c] * x(p, t, d)
        pid_m = tl.program_id(0)
        P = HO * WO
        rm = pid_m * BM + tl.arange(0, BM)
        m_mask = rm < NP
        n, pix, oh, ow = _split(rm, HO, WO)
        for di in range(D):
            d = tl.load(dil_ptr + di)
            acc = tl.zeros((BM, ), dtype=tl.float32)
            for tap in range(K * K):
                kh, kw = _tap_offset(tap, K)
                ih = oh * STRIDE + kh * d
                iw = ow * STRIDE + kw * d
                ok = m_mask & _inside(ih, iw, H, W)
                for c0 in range(0, C, BN):
                    rc = c0 + tl.arange(0, BN)
                    msk = ok[:, None] & (rc < C)[None, :]
                    xv = tl.load(x_ptr + n[:, None] * sxn + rc[None, :] * sxc
                                 + ih[:, None] * sxh + iw[:, None] * sxw,
                                 mask=msk, other=0.).to(tl.float32)
                    gv = tl.load(gc_ptr + rm.to(tl.int64)[:, None] *
                                 (C * K * K) + tap * C + rc[None, :],
                                 mask=msk, other=0.)
                    acc += tl.sum(xv * gv, axis=1)
            tl.store(gp_ptr + (n * D + di) * P + pix, acc, mask=m_mask)

    @triton.jit
    def _bwd_weight_kernel(go_ptr, x_ptr, p_ptr, dil_ptr, gw_ptr, NP, H, W,
                           HO, WO, COG, CG, sgn, sgc, sgh, sgw, sxn, sxc, sxh,
                           sxw, spn, spd, sph, spw,
                           STRIDE: tl.constexpr, K: tl.constexpr,
                           D: tl.constexpr, CAST: tl.constexpr,
                           PREC: tl.constexpr, BM: tl.constexpr,
                           BN: tl.constexpr, BK: tl.constexpr):
        # grad_W[g*COG + o, c, t] = sum_m grad_out[m, o] * X[m, c, t]
        pid_o = tl.program_id(0)
        pid_c = tl.program_id(1)
        pid_z = tl.program_id(2)
        tap = pid_z % (K * K)
        g = pid_z // (K * K)
        kh, kw = _tap_offset(tap, K)
        ro = pid_o * BM + tl.arange(0, BM)
        o_mask = ro < COG
        co = g * COG + ro
        rc = pid_c * BN + tl.arange(0, BN)
        c_mask = rc < CG
        ci = g * CG + rc
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for m0 in range(0, NP, BK):
            rm = m0 + tl.arange(0, BK)
            m_mask = rm < NP
            n, pix, oh, ow = _split(rm, HO, WO)
            a = tl.load(go_ptr + n[None, :] * sgn + co[:, None] * sgc +
                        oh[None, :] * sgh + ow[None, :] * sgw,
                        mask=o_mask[:, None] & m_mask[None, :], other=0.)
            b = tl.zeros((BK, BN), dtype=tl.float32)
            for di in range(D):
                d = tl.load(dil_ptr + di)
                ih = oh * STRIDE + kh * d
                iw = ow * STRIDE + kw * d
                ok = m_mask & _inside(ih, iw, H, W)
                xv = tl.load(x_ptr + n[:, None] * sxn + ci[None, :] * sxc +
                             ih[:, None] * sxh + iw[:, None] * sxw,
                             mask=ok[:, None] & c_mask[None, :],
                             other=0.).to(tl.float32)
                pv = tl.load(p_ptr + n * spn + di * spd + oh * sph + ow * spw,
                             mask=m_mask, other=0.)
                b += xv * pv[:, None]
            # acc[o, c] += a[o, m] @ b[m, c]
            if CAST:
                acc = tl.dot(a, b.to(a.dtype), acc)
            else:
                acc = tl.dot(a.to(tl.float32), b, acc, input_precision=PREC)
        tl.store(gw_ptr + co[:, None] * (CG * K * K) + rc[None, :] * (K * K)
                 + tap, acc, mask=o_mask[:, None] & c_mask[None, :])


# ------------------------------------------------------------ launches ---

_TT = {torch.float32: 'fp32', torch.float16: 'fp16', torch.bfloat16: 'bf16'}


def _fwd_meta(cast: bool, prec: str, hard: bool, stride: int, k: int,
              d: int, blocks: dict) -> dict:
    return dict(STRIDE=stride, K=k, D=d, HARD=hard, CAST=cast, PREC=prec,
                **blocks)


def _cols_meta(cast: bool, prec: str, k: int, blocks: dict) -> dict:
    return dict(K=k, CAST=cast, PREC=prec, **blocks)


def _gather_meta(stride: int, k: int, d: int, blocks: dict) -> dict:
    # _bwd_input_kernel and _bwd_probs_kernel
    return dict(STRIDE=stride, K=k, D=d, BM=blocks['BM'], BN=blocks['BN'])


def _weight_meta(cast: bool, prec: str, stride: int, k: int, d: int,
                 blocks: dict) -> dict:
    return dict(STRIDE=stride, K=k, D=d, CAST=cast, PREC=prec, **blocks)


class KernelVariant(NamedTuple):
    """One compiled variant: ``fn`` with a Triton ``signature`` (argument
    name -> type string, e.g. ``'*bf16'``, ``'i32'``, ``'constexpr'``) and
    the ``constexprs`` a launch passes."""
    name: str
    fn: Any
    signature: dict
    constexprs: dict


def launch_variants(k: int = 3, num_dilations: int = 3,
                    blocks: dict | None = None) -> list[KernelVariant]:
    """Every kernel variant the launches of this module can compile for a
    ``k`` x ``k`` kernel and ``num_dilations`` dilations on a GPU: each
    compute dtype (fp32 with TF32 on/off, fp16, bf16), soft/hard (the
    straight-through probabilities take the soft kernels), stride 1/2.
    Integer arguments are typed ``i32`` (:func:`supports` keeps every
    tensor below 2**31 elements). Used by the compile test in CI."""
    if not HAS_TRITON:
        raise RuntimeError('launch_variants needs the triton package')
    blocks = dict(_BLOCKS if blocks is None else blocks)
    modes = [(torch.float32, False, 'ieee'), (torch.float32, False, 'tf32'),
             (torch.float16, True, 'ieee'), (torch.bfloat16, True, 'ieee')]

    def sig(fn, ptrs, const):
        out = {}
        for a in fn.arg_names:
            out[a] = 'constexpr' if a in const else ptrs.get(a, 'i32')
        return out

    variants = []
    for dtype, cast, prec in modes:
        xt = '*' + _TT[dtype]
        tag = f'{_TT[dtype]}-{prec}' if dtype == torch.float32 else _TT[
            dtype]
        for stride in (1, 2):
            for hard in (False, True):
                const = _fwd_meta(cast, prec, hard, stride, k, num_dilations,
                                  blocks)
                ptrs = dict(x_ptr=xt, w_ptr=xt, b_ptr='*fp32',
                            p_ptr='*i64' if hard else '*fp32',
                            psum_ptr='*fp32', dil_ptr='*i32', out_ptr=xt)
                variants.append(KernelVariant(
                    f'fwd-{tag}-s{stride}-{"hard" if hard else "soft"}',
                    _fwd_kernel, sig(_fwd_kernel, ptrs, const), const))
            const = _weight_meta(cast, prec, stride, k, num_dilations, blocks)
            ptrs = dict(go_ptr=xt, x_ptr=xt, p_ptr='*fp32', dil_ptr='*i32',
                        gw_ptr='*fp32')
            variants.append(KernelVariant(
                f'bwd_weight-{tag}-s{stride}', _bwd_weight_kernel,
                sig(_bwd_weight_kernel, ptrs, const), const))
            if prec == 'ieee':  # no tl.dot: one variant per dtype
                const = _gather_meta(stride, k, num_dilations, blocks)
                ptrs = dict(gc_ptr='*fp32', p_ptr='*fp32', psum_ptr='*fp32',
                            dil_ptr='*i32', gx_ptr=xt)
                variants.append(KernelVariant(
                    f'bwd_input-{_TT[dtype]}-s{stride}', _bwd_input_kernel,
                    sig(_bwd_input_kernel, ptrs, const), const))
                ptrs = dict(gc_ptr='*fp32', x_ptr=xt, dil_ptr='*i32',
                            gp_ptr='*fp32')
                variants.append(KernelVariant(
                    f'bwd_probs-{_TT[dtype]}-s{stride}', _bwd_probs_kernel,
                    sig(_bwd_probs_kernel, ptrs, const), const))
        const = _cols_meta(cast, prec, k, blocks)
        ptrs = dict(go_ptr=xt, w_ptr=xt, g_ptr='*fp32')
        variants.append(KernelVariant(f'bwd_cols-{tag}', _bwd_cols_kernel,
                                      sig(_bwd_cols_kernel, ptrs, const),
                                      const))
    return variants


def _on_device(x: Tensor):
    """Launch on ``x``'s GPU (Triton launches on the current device)."""
    if x.is_cuda:
        return torch.cuda.device(x.device)
    return contextlib.nullcontext()


_DIL_CACHE: dict[tuple, Tensor] = {}
_ZEROS_CACHE: dict[tuple, Tensor] = {}


def _dil_tensor(dilations: tuple[int, ...], device: torch.device) -> Tensor:
    """The dilations as an int32 tensor on ``device``, made once (no
    host-to-device copy per call)."""
    key = (dilations, device)
    t = _DIL_CACHE.get(key)
    if t is None:
        t = torch.tensor(dilations, dtype=torch.int32, device=device)
        _DIL_CACHE[key] = t
    return t


def _zero_bias(device: torch.device, c_out: int) -> Tensor:
    key = (device, c_out)
    t = _ZEROS_CACHE.get(key)
    if t is None:
        t = torch.zeros(c_out, dtype=torch.float32, device=device)
        _ZEROS_CACHE[key] = t
    return t


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
    blk = _blocks()
    grid = (triton.cdiv(npix, blk['BM']),
            triton.cdiv(c_out // groups, blk['BN']), groups)
    _fwd_kernel[grid](
        x, weight, bias, sel, psum, dil, out, npix, h, w, h_out, w_out,
        c_out // groups, cg, *x.stride(), *sp, *out.stride(),
        **_fwd_meta(cast, prec, hard, stride, k, dil.numel(), blk))
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
    blk = _blocks()
    gx = gw = gp = None
    if need_x or need_p:
        # the fp32 [pixels, k*k, C] buffer, a chunk of images at a time
        per_image = h_out * w_out * kk * c * 4
        chunk = max(1, min(n, BWD_BUFFER_BYTES // max(per_image, 1)))
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
            _bwd_cols_kernel[grid](go_c, weight, gcols, npix, h_out, w_out,
                                   c_out // groups, cg, c, *go_c.stride(),
                                   **_cols_meta(cast, prec, k, blk))
            gmeta = _gather_meta(stride, k, d_count, blk)
            if need_x:
                gx_c, p_c = gx[n0:n1], probs[n0:n1]
                ninp = (n1 - n0) * h * w
                grid = (triton.cdiv(ninp, blk['BM']),
                        triton.cdiv(c, blk['BN']))
                _bwd_input_kernel[grid](gcols, p_c, psum[n0:n1], dil, gx_c,
                                        ninp, c, h, w, h_out, w_out,
                                        *p_c.stride(), *gx_c.stride(),
                                        **gmeta)
            if need_p:
                x_c = x[n0:n1]
                grid = (triton.cdiv(npix, blk['BM']), )
                _bwd_probs_kernel[grid](gcols, x_c, dil, gp[n0:n1], npix, c,
                                        h, w, h_out, w_out, *x_c.stride(),
                                        **gmeta)
        del gcols
    if need_w:
        npix = n * h_out * w_out
        gw = torch.empty(weight.shape, dtype=torch.float32, device=x.device)
        grid = (triton.cdiv(c_out // groups, blk['BM']),
                triton.cdiv(cg, blk['BN']), kk * groups)
        _bwd_weight_kernel[grid](
            grad_out, x, probs, dil, gw, npix, h, w, h_out, w_out,
            c_out // groups, cg, *grad_out.stride(), *x.stride(),
            *probs.stride(),
            **_weight_meta(cast, prec, stride, k, d_count, blk))
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
            dil = _dil_tensor(dilations, x.device)
            out = _forward(x, w, b, s, dil, stride, groups, hard)
        ctx.save_for_backward(x, w, s)
        ctx.conf = (dilations, stride, groups, hard, weight.dtype,
                    None if bias is None else bias.dtype, sel.dtype)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, w, s = ctx.saved_tensors
        dilations, stride, groups, hard, w_dtype, b_dtype, p_dtype = ctx.conf
        need_x, need_w, need_b, need_p = ctx.needs_input_grad[:4]
        need_p = need_p and not hard
        gx = gw = gb = gp = None
        with _on_device(x):
            dil = _dil_tensor(dilations, x.device)
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
           dilations: Sequence[int], stride: int, groups: int,
           hard: bool) -> Tensor:
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
        return _PADTriton.apply(input, weight, bias, sel, tuple(dilations),
                                stride, groups, hard)


def pad_conv2d_triton(input: Tensor,
                      weight: Tensor,
                      bias: Tensor | None,
                      probs: Tensor,
                      dilations: Sequence[int],
                      stride: int = 1,
                      groups: int = 1) -> Tensor:
    """Fused Triton PAD convolution (contract of ``pad_conv2d_reference``).

    Shapes: input [N, C_in, H, W] (NCHW or channels_last), weight
    [C_out, C_in/groups, k, k] (the input's dtype or float32), bias
    [C_out] or None, probs [N, D, H_out, W_out] -> [N, C_out, H_out, W_out]
    in the memory format of ``input`` and the :func:`compute_dtype`.
    Differentiable in input, weight, bias, probs (gradients in each one's
    dtype).
    """
    return _apply(input, weight, bias, probs, dilations, stride, groups,
                  False)


def pad_conv2d_hard_triton(input: Tensor,
                           weight: Tensor,
                           bias: Tensor | None,
                           index: Tensor,
                           dilations: Sequence[int],
                           stride: int = 1,
                           groups: int = 1) -> Tensor:
    """Sparse hard PAD in Triton: each pixel gathers only its chosen
    dilation (contract of ``pad_conv2d_hard``).

    Shapes: index [N, H_out, W_out] (integer) -> [N, C_out, H_out, W_out].
    Differentiable in input, weight and bias.
    """
    return _apply(input, weight, bias, index, dilations, stride, groups,
                  True)
