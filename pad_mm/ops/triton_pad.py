"""Fused PAD convolution as Triton kernels (optional; needs ``triton``).

Status: the kernels are checked for correctness against the reference
(values and all gradients, fp32/fp16/bf16, NCHW and channels_last, stride 1
and 2, groups 1 and depthwise, hard path) by running them in Triton's CPU
interpreter (``TRITON_INTERPRET=1``, see ``tests/test_kernels.py``). Their
speed on a GPU has NOT been measured yet and the tile sizes are untuned;
``tools/analysis_tools/benchmark_pad.py`` measures them on a CUDA machine.

Kernels (all implicit GEMMs; ``x`` and ``grad_out`` are read through their
strides, so NCHW and channels_last need no copy):

* forward: for each tap, the mixed input ``sum_d probs_d * x(p + off*d)``
  of a [BLOCK_M pixels, BLOCK_K channels] tile is formed in registers
  (the centre tap, identical for every dilation, is read once and scaled
  by ``sum_d probs_d``) and multiplied with the weight tile; one GEMM's
  worth of MACs in total. ``HARD=True``: each pixel gathers only its
  chosen dilation (sparse hard inference, no mixing).
* backward: ``grad_cols = grad_out @ W`` (a GEMM into an fp32
  [N*H_out*W_out, C_in*k*k] buffer), then a gather kernel forms
  ``grad_input`` (weighted col2im over the dilations) and another
  ``grad_probs``; ``grad_weight`` is a GEMM of ``grad_out`` with the
  re-formed mixed input. ``grad_bias`` is a torch sum.

Accumulation is in fp32; fp16/bf16 tiles go to ``tl.dot`` in their own
dtype (tensor cores), fp32 tiles use TF32 iff
``torch.backends.cudnn.allow_tf32`` (as torch's own convs do). Depthwise
and grouped convs run the same kernels per group with padded tiles: correct
but not efficient, so ``impl='auto'`` prefers these kernels only for
``C_in/groups >= 16``. float64 is not supported (use ``'reference'``).
"""
from __future__ import annotations

import os
from collections.abc import Sequence

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
    'supports_hard', 'prefer'
]

_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _interpreting() -> bool:
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


def supports(input: Tensor, weight: Tensor, probs: Tensor,
             dilations: Sequence[int], stride: int, groups: int) -> bool:
    """Whether the Triton kernels handle these inputs (CUDA tensors, or CPU
    tensors under ``TRITON_INTERPRET=1``; fp16/bf16/fp32)."""
    return (HAS_TRITON and input.dtype in _DTYPES
            and weight.dtype == input.dtype
            and (input.is_cuda or (_interpreting()
                                   and input.device.type == 'cpu')))


supports_hard = supports


def prefer(input: Tensor, weight: Tensor, probs: Tensor,
           dilations: Sequence[int], stride: int, groups: int) -> bool:
    """``impl='auto'`` picks Triton on CUDA for non-degenerate GEMMs."""
    return input.is_cuda and weight.shape[1] >= 16


def _blocks() -> dict:
    # the interpreter runs every program in Python: small tiles for tests
    if _interpreting():
        return dict(BM=16, BN=16, BK=16)
    return dict(BM=64, BN=64, BK=32)


if HAS_TRITON:

    @triton.jit
    def _mma(acc, a, b, CAST: tl.constexpr, PREC: tl.constexpr):
        # a: [M, K] fp32 (mixed input), b: [K, N] in the input dtype
        if CAST:
            return acc + tl.dot(a.to(b.dtype), b)
        return acc + tl.dot(a, b.to(tl.float32), input_precision=PREC)

    @triton.jit
    def _fwd_kernel(x_ptr, w_ptr, b_ptr, p_ptr, psum_ptr, dil_ptr, out_ptr,
                    NP, H, W, HO, WO, COG, CG, sxn, sxc, sxh, sxw, spn, spd,
                    sph, spw, son, soc, soh, sow,
                    STRIDE: tl.constexpr, K: tl.constexpr, D: tl.constexpr,
                    HAS_BIAS: tl.constexpr, HARD: tl.constexpr,
                    CAST: tl.constexpr, PREC: tl.constexpr,
                    BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        g = tl.program_id(2)
        P = HO * WO
        rm = pid_m * BM + tl.arange(0, BM)
        m_mask = rm < NP
        n = rm // P
        pix = rm % P
        oh = pix // WO
        ow = pix % WO
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
        for tap in tl.static_range(K * K):
            kh = tap // K - K // 2
            kw = tap % K - K // 2
            for c0 in range(0, CG, BK):
                rk = c0 + tl.arange(0, BK)
                k_mask = rk < CG
                ci = g * CG + rk
                xoff = n[:, None] * sxn + ci[None, :] * sxc
                if HARD:
                    ih = oh * STRIDE + kh * drow
                    iw = ow * STRIDE + kw * drow
                    ok = m_mask & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
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
                    for di in tl.static_range(D):
                        d = tl.load(dil_ptr + di)
                        ih = oh * STRIDE + kh * d
                        iw = ow * STRIDE + kw * d
                        ok = m_mask & (ih >= 0) & (ih < H) & (iw >= 0) & (
                            iw < W)
                        xv = tl.load(x_ptr + xoff + ih[:, None] * sxh +
                                     iw[:, None] * sxw,
                                     mask=ok[:, None] & k_mask[None, :],
                                     other=0.).to(tl.float32)
                        pv = tl.load(p_ptr + n * spn + di * spd + oh * sph +
                                     ow * spw, mask=m_mask,
                                     other=0.).to(tl.float32)
                        a += xv * pv[:, None]
                wv = tl.load(w_ptr + co[None, :] * (CG * K * K) +
                             rk[:, None] * (K * K) + tap,
                             mask=k_mask[:, None] & o_mask[None, :], other=0.)
                acc = _mma(acc, a, wv, CAST, PREC)
        if HAS_BIAS:
            acc += tl.load(b_ptr + co, mask=o_mask,
                           other=0.).to(tl.float32)[None, :]
        tl.store(out_ptr + n[:, None] * son + co[None, :] * soc +
                 oh[:, None] * soh + ow[:, None] * sow,
                 acc.to(out_ptr.dtype.element_ty),
                 mask=m_mask[:, None] & o_mask[None, :])

    @triton.jit
    def _bwd_cols_kernel(go_ptr, w_ptr, g_ptr, NP, HO, WO, COG, CG,
                         sgn, sgc, sgh, sgw,
                         K: tl.constexpr, CAST: tl.constexpr,
                         PREC: tl.constexpr, BM: tl.constexpr,
                         BN: tl.constexpr, BK: tl.constexpr):
        # grad_cols[m, (g*CG + c)*K*K + t] = sum_o grad_out[m, g*COG + o]
        #                                     * W[g*COG + o, c, t]
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        g = tl.program_id(2)
        KK = K * K
        P = HO * WO
        rm = pid_m * BM + tl.arange(0, BM)
        m_mask = rm < NP
        n = rm // P
        pix = rm % P
        oh = pix // WO
        ow = pix % WO
        rj = pid_n * BN + tl.arange(0, BN)  # (c, t) within the group
        j_mask = rj < CG * KK
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for o0 in range(0, COG, BK):
            ro = o0 + tl.arange(0, BK)
            o_mask = ro < COG
            co = g * COG + ro
            a = tl.load(go_ptr + n[:, None] * sgn + co[None, :] * sgc +
                        oh[:, None] * sgh + ow[:, None] * sgw,
                        mask=m_mask[:, None] & o_mask[None, :],
                        other=0.).to(tl.float32)
            b = tl.load(w_ptr + co[:, None] * (CG * KK) + rj[None, :],
                        mask=o_mask[:, None] & j_mask[None, :], other=0.)
            acc = _mma(acc, a, b, CAST, PREC)
        C = tl.num_programs(2) * CG
        tl.store(g_ptr + rm.to(tl.int64)[:, None] * (C * KK) + g * CG * KK +
                 rj[None, :],
                 acc, mask=m_mask[:, None] & j_mask[None, :])

    @triton.jit
    def _bwd_input_kernel(gc_ptr, p_ptr, psum_ptr, dil_ptr, gx_ptr, NI, C, H,
                          W, HO, WO, spn, spd, sph, spw, sxn, sxc, sxh, sxw,
                          STRIDE: tl.constexpr, K: tl.constexpr,
                          D: tl.constexpr, BM: tl.constexpr,
                          BN: tl.constexpr):
        # grad_x[n, c, ih, iw] = sum_{d, t} probs[n, d, p] * grad_cols[p, c, t]
        # over the output pixels p with p*s + off_t*d = (ih, iw)
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        KK = K * K
        rm = pid_m * BM + tl.arange(0, BM)  # input pixels
        m_mask = rm < NI
        n = rm // (H * W)
        pix = rm % (H * W)
        ih = pix // W
        iw = pix % W
        rc = pid_n * BN + tl.arange(0, BN)
        c_mask = rc < C
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for tap in tl.static_range(KK):
            kh = tap // K - K // 2
            kw = tap % K - K // 2
            if tap == KK // 2:
                ok = m_mask & (ih % STRIDE == 0) & (iw % STRIDE == 0)
                oh = ih // STRIDE
                ow = iw // STRIDE
                ok = ok & (oh < HO) & (ow < WO)
                m = (n * (HO * WO) + oh * WO + ow).to(tl.int64)
                pv = tl.load(psum_ptr + m, mask=ok, other=0.)
                gv = tl.load(gc_ptr + m[:, None] * (C * KK) +
                             rc[None, :] * KK + tap,
                             mask=ok[:, None] & c_mask[None, :], other=0.)
                acc += gv * pv[:, None]
            else:
                for di in tl.static_range(D):
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
                                 ow * spw, mask=ok, other=0.).to(tl.float32)
                    gv = tl.load(gc_ptr + m[:, None] * (C * KK) +
                                 rc[None, :] * KK + tap,
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
        # grad_probs[n, d, p] = sum_{c, t} grad_cols[p, c, t] * x(p, t, d)
        pid_m = tl.program_id(0)
        KK = K * K
        P = HO * WO
        rm = pid_m * BM + tl.arange(0, BM)
        m_mask = rm < NP
        n = rm // P
        pix = rm % P
        oh = pix // WO
        ow = pix % WO
        for di in tl.static_range(D):
            d = tl.load(dil_ptr + di)
            acc = tl.zeros((BM, ), dtype=tl.float32)
            for tap in tl.static_range(KK):
                kh = tap // K - K // 2
                kw = tap % K - K // 2
                ih = oh * STRIDE + kh * d
                iw = ow * STRIDE + kw * d
                ok = m_mask & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
                for c0 in range(0, C, BN):
                    rc = c0 + tl.arange(0, BN)
                    msk = ok[:, None] & (rc < C)[None, :]
                    xv = tl.load(x_ptr + n[:, None] * sxn + rc[None, :] * sxc
                                 + ih[:, None] * sxh + iw[:, None] * sxw,
                                 mask=msk, other=0.).to(tl.float32)
                    gv = tl.load(gc_ptr + rm.to(tl.int64)[:, None] * (C * KK) +
                                 rc[None, :] * KK + tap, mask=msk, other=0.)
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
        KK = K * K
        tap = pid_z % KK
        g = pid_z // KK
        kh = tap // K - K // 2
        kw = tap % K - K // 2
        P = HO * WO
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
            n = rm // P
            pix = rm % P
            oh = pix // WO
            ow = pix % WO
            a = tl.load(go_ptr + n[None, :] * sgn + co[:, None] * sgc +
                        oh[None, :] * sgh + ow[None, :] * sgw,
                        mask=o_mask[:, None] & m_mask[None, :], other=0.)
            b = tl.zeros((BK, BN), dtype=tl.float32)
            for di in tl.static_range(D):
                d = tl.load(dil_ptr + di)
                ih = oh * STRIDE + kh * d
                iw = ow * STRIDE + kw * d
                ok = m_mask & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
                xv = tl.load(x_ptr + n[:, None] * sxn + ci[None, :] * sxc +
                             ih[:, None] * sxh + iw[:, None] * sxw,
                             mask=ok[:, None] & c_mask[None, :],
                             other=0.).to(tl.float32)
                pv = tl.load(p_ptr + n * spn + di * spd + oh * sph + ow * spw,
                             mask=m_mask, other=0.).to(tl.float32)
                b += xv * pv[:, None]
            # acc[o, c] += a[o, m] @ b[m, c]
            if CAST:
                acc += tl.dot(a, b.to(a.dtype))
            else:
                acc += tl.dot(a.to(tl.float32), b, input_precision=PREC)
        tl.store(gw_ptr + co[:, None] * (CG * KK) + rc[None, :] * KK + tap,
                 acc, mask=o_mask[:, None] & c_mask[None, :])


def _dot_mode(dtype: torch.dtype) -> tuple[bool, str]:
    """(cast tiles to the input dtype for tl.dot, fp32 input precision)."""
    if _interpreting():
        # the interpreter's dot is exact only in fp32
        return False, 'ieee'
    if dtype == torch.float32:
        return False, 'tf32' if torch.backends.cudnn.allow_tf32 else 'ieee'
    return True, 'ieee'


def _like_input(x: Tensor, shape: tuple[int, ...],
                dtype: torch.dtype) -> Tensor:
    """Empty tensor in the memory format of ``x`` (channels_last or not)."""
    cl = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
        memory_format=torch.channels_last)
    fmt = torch.channels_last if cl else torch.contiguous_format
    return torch.empty(shape, dtype=dtype, device=x.device,
                       memory_format=fmt)


def _forward(x: Tensor, weight: Tensor, bias: Tensor | None, sel: Tensor,
             dil: Tensor, d_count: int, stride: int, groups: int,
             hard: bool) -> Tensor:
    n, c, h, w = x.shape
    c_out, cg, k, _ = weight.shape
    h_out, w_out = sel.shape[-2:]
    npix = n * h_out * w_out
    out = _like_input(x, (n, c_out, h_out, w_out), x.dtype)
    if hard:
        psum = sel  # unused
        sp = (sel.stride(0), 0, sel.stride(1), sel.stride(2))
    else:
        psum = sel.float().sum(1).contiguous()
        sp = sel.stride()
    cast, prec = _dot_mode(x.dtype)
    blk = _blocks()
    grid = (triton.cdiv(npix, blk['BM']),
            triton.cdiv(c_out // groups, blk['BN']), groups)
    _fwd_kernel[grid](
        x, weight, bias if bias is not None else weight, sel, psum, dil, out,
        npix, h, w, h_out, w_out, c_out // groups, cg, *x.stride(), *sp,
        *out.stride(), STRIDE=stride, K=k, D=d_count,
        HAS_BIAS=bias is not None, HARD=hard, CAST=cast, PREC=prec, **blk)
    return out


def _backward(ctx_needs: tuple[bool, ...], grad_out: Tensor, x: Tensor,
              weight: Tensor, probs: Tensor, dil: Tensor, stride: int,
              groups: int, has_bias: bool):
    need_x, need_w, need_b, need_p = ctx_needs
    n, c, h, w = x.shape
    c_out, cg, k, _ = weight.shape
    d_count = probs.shape[1]
    h_out, w_out = probs.shape[-2:]
    npix = n * h_out * w_out
    kk = k * k
    cast, prec = _dot_mode(x.dtype)
    blk = _blocks()
    gx = gw = gb = gp = None
    if need_x or need_p:
        gcols = torch.empty(npix, c * kk, dtype=torch.float32,
                            device=x.device)
        grid = (triton.cdiv(npix, blk['BM']),
                triton.cdiv(cg * kk, blk['BN']), groups)
        _bwd_cols_kernel[grid](grad_out, weight, gcols, npix, h_out, w_out,
                               c_out // groups, cg, *grad_out.stride(), K=k,
                               CAST=cast, PREC=prec, **blk)
        if need_x:
            gx = _like_input(x, tuple(x.shape), x.dtype)
            psum = probs.float().sum(1).contiguous()
            ninp = n * h * w
            grid = (triton.cdiv(ninp, blk['BM']), triton.cdiv(c, blk['BN']))
            _bwd_input_kernel[grid](gcols, probs, psum, dil, gx, ninp, c, h,
                                    w, h_out, w_out, *probs.stride(),
                                    *gx.stride(), STRIDE=stride, K=k,
                                    D=d_count, BM=blk['BM'], BN=blk['BN'])
        if need_p:
            gp = torch.empty(n, d_count, h_out, w_out, dtype=torch.float32,
                             device=x.device)
            grid = (triton.cdiv(npix, blk['BM']), )
            _bwd_probs_kernel[grid](gcols, x, dil, gp, npix, c, h, w, h_out,
                                    w_out, *x.stride(), STRIDE=stride, K=k,
                                    D=d_count, BM=blk['BM'], BN=blk['BN'])
            gp = gp.to(probs.dtype)
        del gcols
    if need_w:
        gw = torch.empty(weight.shape, dtype=torch.float32, device=x.device)
        grid = (triton.cdiv(c_out // groups, blk['BM']),
                triton.cdiv(cg, blk['BN']), kk * groups)
        _bwd_weight_kernel[grid](grad_out, x, probs, dil, gw, npix, h, w,
                                 h_out, w_out, c_out // groups, cg,
                                 *grad_out.stride(), *x.stride(),
                                 *probs.stride(), STRIDE=stride, K=k,
                                 D=d_count, CAST=cast, PREC=prec, **blk)
        gw = gw.to(weight.dtype)
    if need_b and has_bias:
        gb = grad_out.float().sum((0, 2, 3)).to(grad_out.dtype)
    return gx, gw, gb, gp


def _dil_tensor(dilations: Sequence[int], device) -> Tensor:
    return torch.tensor(list(dilations), dtype=torch.int32, device=device)


class _PADTriton(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, weight, bias, probs, dilations, stride, groups):
        dil = _dil_tensor(dilations, x.device)
        out = _forward(x, weight, bias, probs, dil, len(dilations), stride,
                       groups, hard=False)
        ctx.save_for_backward(x, weight, probs, dil)
        ctx.conf = (stride, groups, bias is not None)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, probs, dil = ctx.saved_tensors
        stride, groups, has_bias = ctx.conf
        gx, gw, gb, gp = _backward(ctx.needs_input_grad[:4], grad_out, x,
                                   weight, probs, dil, stride, groups,
                                   has_bias)
        return gx, gw, gb, gp, None, None, None


class _PADTritonHard(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, weight, bias, index, dilations, stride, groups):
        dil = _dil_tensor(dilations, x.device)
        out = _forward(x, weight, bias, index, dil, len(dilations), stride,
                       groups, hard=True)
        ctx.save_for_backward(x, weight, index, dil)
        ctx.conf = (stride, groups, bias is not None, len(dilations))
        return out

    @staticmethod
    def backward(ctx, grad_out):
        # the gradient of the hard conv is the soft one at one-hot probs
        x, weight, index, dil = ctx.saved_tensors
        stride, groups, has_bias, d_count = ctx.conf
        probs = F.one_hot(index, d_count).permute(0, 3, 1, 2).to(x.dtype)
        needs = tuple(ctx.needs_input_grad[:3]) + (False, )
        gx, gw, gb, _ = _backward(needs, grad_out, x, weight, probs, dil,
                                  stride, groups, has_bias)
        return gx, gw, gb, None, None, None, None


def pad_conv2d_triton(input: Tensor,
                      weight: Tensor,
                      bias: Tensor | None,
                      probs: Tensor,
                      dilations: Sequence[int],
                      stride: int = 1,
                      groups: int = 1) -> Tensor:
    """Fused Triton PAD convolution (contract of ``pad_conv2d_reference``).

    Shapes: input [N, C_in, H, W] (NCHW or channels_last), weight
    [C_out, C_in/groups, k, k], bias [C_out] or None, probs
    [N, D, H_out, W_out] -> [N, C_out, H_out, W_out] in the memory format
    and dtype of ``input``. Differentiable in input, weight, bias, probs.
    """
    if not HAS_TRITON:
        raise RuntimeError("impl='triton' needs the triton package")
    dev = input.device.type
    if torch.is_autocast_enabled(dev):
        # like autocast's conv: run in the autocast dtype
        dt = torch.get_autocast_dtype(dev)
        input, weight, probs = (t.to(dt) for t in (input, weight, probs))
        bias = None if bias is None else bias.to(dt)
    bias = bias.contiguous() if bias is not None else None
    with torch.autocast(dev, enabled=False):
        return _PADTriton.apply(input, weight.contiguous(), bias, probs,
                                tuple(dilations), stride, groups)


def pad_conv2d_hard_triton(input: Tensor,
                           weight: Tensor,
                           bias: Tensor | None,
                           index: Tensor,
                           dilations: Sequence[int],
                           stride: int = 1,
                           groups: int = 1) -> Tensor:
    """Sparse hard PAD in Triton: each pixel gathers only its chosen
    dilation (contract of ``pad_conv2d_hard``).

    Shapes: index [N, H_out, W_out] -> [N, C_out, H_out, W_out].
    Differentiable in input, weight and bias.
    """
    if not HAS_TRITON:
        raise RuntimeError("impl='triton' needs the triton package")
    dev = input.device.type
    if torch.is_autocast_enabled(dev):
        dt = torch.get_autocast_dtype(dev)
        input, weight = input.to(dt), weight.to(dt)
        bias = None if bias is None else bias.to(dt)
    bias = bias.contiguous() if bias is not None else None
    with torch.autocast(dev, enabled=False):
        return _PADTritonHard.apply(input, weight.contiguous(), bias,
                                    index.long(), tuple(dilations), stride,
                                    groups)
