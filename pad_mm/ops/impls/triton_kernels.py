"""The Triton kernels of the PAD convolution and the variants they compile to.

Kernels (all implicit GEMMs; ``x`` and ``grad_out`` are read through their
strides, so NCHW and channels_last need no copy):

* forward: for each tap, the mixed input ``sum_d probs_d * x(p + off*d)``
  of a [BLOCK_M pixels, BLOCK_K channels] tile is formed in registers
  (the centre tap, identical for every dilation, is read once and scaled
  by ``sum_d probs_d``) and multiplied with the weight tile; one GEMM's
  worth of MACs in total. ``HARD=True``: each pixel gathers only its
  chosen dilation (sparse hard inference, no mixing).
* backward, per chunk of images: ``grad_cols = grad_out @ W`` (a GEMM
  into an fp32 [pixels, k*k, C_in] buffer, channels innermost so the
  gathers below read it contiguously), then a gather kernel forms
  ``grad_input`` (weighted col2im over the dilations) and another
  ``grad_probs``. ``grad_weight`` is a GEMM of ``grad_out`` with the
  re-formed mixed input over the whole batch.

The launches and the autograd Function are in :mod:`.triton_pad`;
:mod:`.triton_launch` lists every variant a launch can compile (the
compile test in CI and the static kernel report use it).
"""
from __future__ import annotations

import os

import torch

try:  # optional dependency
    import triton
    import triton.language as tl
    HAS_TRITON = True
except Exception:  # pragma: no cover - depends on the environment
    triton = tl = None
    HAS_TRITON = False

__all__ = ['HAS_TRITON', 'blocks', 'interpreting', 'BLOCKS']

BLOCKS = dict(BM=64, BN=64, BK=32)
INTERPRET_BLOCKS = dict(BM=16, BN=16, BK=16)


def interpreting() -> bool:
    """Whether Triton runs in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


def blocks() -> dict:
    """Tile sizes of the launches (small ones in the interpreter, which
    runs every program in Python)."""
    return dict(INTERPRET_BLOCKS if interpreting() else BLOCKS)


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
    def _mixed_taps(x_ptr, xoff, p_ptr, dil_ptr, n, oh, ow, kh, kw, m_mask,
                    c_mask, H, W, sxh, sxw, spn, spd, sph, spw,
                    STRIDE: tl.constexpr, D: tl.constexpr, BM: tl.constexpr,
                    BC: tl.constexpr):
        # [BM pixels, BC channels] tile of X at tap (kh, kw) mixed over
        # the D dilations: sum_d probs[n, d, oh, ow] * x(pixel, tap, d);
        # xoff: the pixels' image and the channels' offsets into x
        a = tl.zeros((BM, BC), dtype=tl.float32)
        for di in range(D):
            d = tl.load(dil_ptr + di)
            ih = oh * STRIDE + kh * d
            iw = ow * STRIDE + kw * d
            ok = m_mask & _inside(ih, iw, H, W)
            xv = tl.load(x_ptr + xoff + ih[:, None] * sxh + iw[:, None] * sxw,
                         mask=ok[:, None] & c_mask[None, :],
                         other=0.).to(tl.float32)
            pv = tl.load(p_ptr + n * spn + di * spd + oh * sph + ow * spw,
                         mask=m_mask, other=0.)
            a += xv * pv[:, None]
        return a

    @triton.jit
    def fwd_kernel(x_ptr, w_ptr, b_ptr, p_ptr, psum_ptr, dil_ptr, out_ptr,
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
                    a = _mixed_taps(x_ptr, xoff, p_ptr, dil_ptr, n, oh, ow,
                                    kh, kw, m_mask, k_mask, H, W, sxh, sxw,
                                    spn, spd, sph, spw, STRIDE, D, BM, BK)
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
    def bwd_cols_kernel(go_ptr, w_ptr, g_ptr, NP, HO, WO, COG, CG, C,
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
    def bwd_input_kernel(gc_ptr, p_ptr, psum_ptr, dil_ptr, gx_ptr, NI, C, H,
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
    def bwd_probs_kernel(gc_ptr, x_ptr, dil_ptr, gp_ptr, NP, C, H, W, HO,
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
    def bwd_weight_kernel(go_ptr, x_ptr, p_ptr, dil_ptr, gw_ptr, NP, H, W,
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
            xoff = n[:, None] * sxn + ci[None, :] * sxc
            b = _mixed_taps(x_ptr, xoff, p_ptr, dil_ptr, n, oh, ow, kh, kw,
                            m_mask, c_mask, H, W, sxh, sxw, spn, spd, sph,
                            spw, STRIDE, D, BK, BN)
            # acc[o, c] += a[o, m] @ b[m, c]
            if CAST:
                acc = tl.dot(a, b.to(a.dtype), acc)
            else:
                acc = tl.dot(a.to(tl.float32), b, acc, input_precision=PREC)
        tl.store(gw_ptr + co[:, None] * (CG * K * K) + rc[None, :] * (K * K)
                 + tap, acc, mask=o_mask[:, None] & c_mask[None, :])
