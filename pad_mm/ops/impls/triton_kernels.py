"""The Triton kernels of the PAD convolution and the variants they compile to.

Kernels (all implicit GEMMs; the launches give them ``x`` and
``grad_out`` in channels_last, channels innermost, so the gathers are
vector loads; other strides work too). The weight is repacked once per
call so that the GEMM tile's inner dimension is contiguous: ``[G, k*k,
C_in/G, C_out/G]`` for the forward, ``[G, C_out/G, k*k, C_in/G]`` for the
backward. The taps and the dilations' loop are unrolled at compile time
(``tl.static_range``); the dilations are loaded once per program.

* forward: for each tap, the mixed input ``sum_d probs_d * x(p + off*d)``
  of a [BLOCK_M pixels, BLOCK_K channels] tile is formed in registers
  from the probabilities loaded once per pixel tile (the centre tap,
  identical for every dilation, is read once and scaled by
  ``sum_d probs_d``) and multiplied with the weight tile; one GEMM's worth
  of MACs in total. ``HARD=True``: each pixel gathers only its chosen
  dilation (sparse hard inference, no mixing).
* backward, per chunk of images: ``grad_cols = grad_out @ W`` (a GEMM per
  tap into a [pixels, k*k, C_in] buffer in the compute dtype, channels
  innermost); its epilogue also forms the per-channel-tile partial sums
  of ``grad_probs`` (from the fp32 accumulator and gathered ``x``), which
  ``bwd_probs_kernel`` adds up in a fixed order; a gather kernel forms
  ``grad_input`` (weighted col2im over the dilations). Where the buffer
  does not fit, ``grad_input`` is one implicit GEMM over ``grad_out``
  mixed at the source pixels (``bwd_input_gemm_kernel``, no buffer).
  ``grad_weight``: a GEMM of ``grad_out`` with the re-formed mixed input.

Tiles: :mod:`.triton_tiles`; launches and the autograd Function:
:mod:`.triton_pad`; every variant a launch can compile (the compile test
and the kernel report use them): :mod:`.triton_launch`.
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

__all__ = ['HAS_TRITON', 'interpreting']

def interpreting() -> bool:
    """Whether Triton runs in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


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
    def _inside(ih, iw, H, W):
        return (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)

    @triton.jit
    def _dilations(dil_ptr, D: tl.constexpr):
        # the D dilations as a tuple of scalars, loaded once per program
        ds = ()
        for di in tl.static_range(D):
            ds = ds + (tl.load(dil_ptr + di), )
        return ds

    @triton.jit
    def _probs(p_ptr, n, oh, ow, m_mask, spn, spd, sph, spw,
               D: tl.constexpr):
        # probs[n, d, oh, ow] of a pixel tile as a tuple of D [BM] vectors
        ps = ()
        for di in tl.static_range(D):
            ps = ps + (tl.load(p_ptr + n * spn + di * spd + oh * sph +
                               ow * spw, mask=m_mask, other=0.), )
        return ps

    @triton.jit
    def _tap_offsets(oh, ow, ds, m_mask, H, W, sxh, sxw, kh, kw,
                     STRIDE: tl.constexpr, D: tl.constexpr):
        # per dilation: the [BM] offsets into x of the pixels' tap (kh, kw)
        # (compile-time constants where the taps are unrolled) and whether
        # it is inside the image
        offs = ()
        oks = ()
        for di in tl.static_range(D):
            ih = oh * STRIDE + kh * ds[di]
            iw = ow * STRIDE + kw * ds[di]
            offs = offs + (ih * sxh + iw * sxw, )
            oks = oks + (m_mask & _inside(ih, iw, H, W), )
        return offs, oks

    @triton.jit
    def _source_pixel(ih, iw, dh, dw, m_mask, HO, WO,
                      STRIDE: tl.constexpr):
        # the output pixel whose tap at offset (dh, dw) reads input pixel
        # (ih, iw): oh * STRIDE + dh = ih; ok where it exists (else 0)
        th, tw = ih - dh, iw - dw
        ok = m_mask & (th >= 0) & (tw >= 0) & (th % STRIDE == 0) & (
            tw % STRIDE == 0)
        oh = th // STRIDE
        ow = tw // STRIDE
        ok = ok & (oh < HO) & (ow < WO)
        return tl.where(ok, oh, 0), tl.where(ok, ow, 0), ok

    @triton.jit
    def _mixed(x_ptr, xoff, offs, oks, ps, c_mask, D: tl.constexpr):
        # [BM pixels, BC channels] tile of X at one tap mixed over the D
        # dilations: sum_d ps[d] * x(pixel + tap * d); xoff [BM, BC]: the
        # pixels' image and the channels' offsets, offs/oks per dilation
        a = tl.load(x_ptr + xoff + offs[0][:, None],
                    mask=oks[0][:, None] & c_mask[None, :],
                    other=0.).to(tl.float32) * ps[0][:, None]
        for di in tl.static_range(1, D):
            a += tl.load(x_ptr + xoff + offs[di][:, None],
                         mask=oks[di][:, None] & c_mask[None, :],
                         other=0.).to(tl.float32) * ps[di][:, None]
        return a

    @triton.jit
    def fwd_kernel(x_ptr, w_ptr, b_ptr, p_ptr, psum_ptr, dil_ptr, out_ptr,
                    NP, H, W, HO, WO, COG, CG, sxn, sxc, sxh, sxw, spn, spd,
                    sph, spw, son, soc, soh, sow,
                    STRIDE: tl.constexpr, K: tl.constexpr, D: tl.constexpr,
                    HARD: tl.constexpr, CAST: tl.constexpr,
                    PREC: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                    BK: tl.constexpr):
        # out[m, g*COG + o] = sum_{tap, c} X[m, tap, c] * Wp[g, tap, c, o]
        # + b (Wp: the weight packed [G, K*K, CG, COG], output channels
        # innermost); X mixes the dilations (HARD: gathers the chosen one)
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
        # once per pixel tile: the dilation choice, or the probabilities
        # and their sum (the centre tap's weight)
        if HARD:
            idx = tl.load(p_ptr + n * spn + oh * sph + ow * spw, mask=m_mask,
                          other=0)
            drow = tl.load(dil_ptr + idx, mask=m_mask, other=1)
        else:
            ds = _dilations(dil_ptr, D)
            ps = _probs(p_ptr, n, oh, ow, m_mask, spn, spd, sph, spw, D)
            psum = tl.load(psum_ptr + rm, mask=m_mask, other=0.)
        for tap in tl.static_range(K * K):
            KH = tap // K - K // 2
            KW = tap % K - K // 2
            if HARD:
                ih = oh * STRIDE + KH * drow
                iw = ow * STRIDE + KW * drow
                hoff = ih * sxh + iw * sxw
                hok = m_mask & _inside(ih, iw, H, W)
            elif tap != (K * K) // 2:
                offs, oks = _tap_offsets(oh, ow, ds, m_mask, H, W, sxh, sxw,
                                         KH, KW, STRIDE, D)
            w_tap = w_ptr + (g * (K * K) + tap) * CG * COG
            for c0 in range(0, CG, BK):
                rk = c0 + tl.arange(0, BK)
                k_mask = rk < CG
                xoff = n[:, None] * sxn + (g * CG + rk)[None, :] * sxc
                if HARD:
                    a = tl.load(x_ptr + xoff + hoff[:, None],
                                mask=hok[:, None] & k_mask[None, :],
                                other=0.).to(tl.float32)
                elif tap == (K * K) // 2:  # centre: same for every dilation
                    a = tl.load(x_ptr + xoff + (oh * STRIDE * sxh +
                                                ow * STRIDE * sxw)[:, None],
                                mask=m_mask[:, None] & k_mask[None, :],
                                other=0.).to(tl.float32) * psum[:, None]
                else:
                    a = _mixed(x_ptr, xoff, offs, oks, ps, k_mask, D)
                wv = tl.load(w_tap + rk[:, None] * COG + ro[None, :],
                             mask=k_mask[:, None] & o_mask[None, :], other=0.)
                acc = _mma(acc, a, wv, CAST, PREC)
        acc += tl.load(b_ptr + co, mask=o_mask, other=0.)[None, :]
        tl.store(out_ptr + n[:, None] * son + co[None, :] * soc +
                 oh[:, None] * soh + ow[:, None] * sow,
                 acc.to(out_ptr.dtype.element_ty),
                 mask=m_mask[:, None] & o_mask[None, :])

    @triton.jit
    def bwd_cols_kernel(go_ptr, w_ptr, x_ptr, dil_ptr, g_ptr, part_ptr, NP,
                         H, W, HO, WO, COG, CG, C, E, sgn, sgc, sgh, sgw,
                         sxn, sxc, sxh, sxw,
                         STRIDE: tl.constexpr, K: tl.constexpr,
                         D: tl.constexpr, DP: tl.constexpr,
                         COLS: tl.constexpr, PROBS: tl.constexpr,
                         CAST: tl.constexpr,
                         PREC: tl.constexpr, BM: tl.constexpr,
                         BN: tl.constexpr, BK: tl.constexpr):
        # for each tap t (static): grad_cols[m, t, g*CG + c] = sum_o
        # grad_out[m, g*COG + o] * Wt[g, o, t, c] (Wt: the weight packed
        # [G, COG, K*K, CG], input channels innermost), a GEMM per tap;
        # COLS: stored in the buffer's dtype (rows of [K*K, C]);
        # PROBS: the epilogue adds sum_c grad_cols[m, t, c] * x(m, t, d)
        # for each dilation d over the taps, and stores the partial sums of
        # this channel tile at part[T, n, d, pixel] (T = g * tiles + tile,
        # E = the chunk's N * D * HO * WO); bwd_probs_kernel sums over T
        pid_m = tl.program_id(0)
        pid_c = tl.program_id(1)
        g = tl.program_id(2)
        rm = pid_m * BM + tl.arange(0, BM)
        m_mask = rm < NP
        n, pix, oh, ow = _split(rm, HO, WO)
        rc = pid_c * BN + tl.arange(0, BN)
        c_mask = rc < CG
        if PROBS:
            xrow = n * sxn
            xcol = (g * CG + rc) * sxc
            rd = tl.arange(0, DP)
            parts = tl.zeros((BM, DP), dtype=tl.float32)  # [pixel, d]
        for tap in tl.static_range(K * K):
            KH = tap // K - K // 2
            KW = tap % K - K // 2
            acc = tl.zeros((BM, BN), dtype=tl.float32)
            for o0 in range(0, COG, BK):
                ro = o0 + tl.arange(0, BK)
                o_mask = ro < COG
                a = tl.load(go_ptr + n[:, None] * sgn +
                            (g * COG + ro)[None, :] * sgc +
                            (oh * sgh + ow * sgw)[:, None],
                            mask=m_mask[:, None] & o_mask[None, :],
                            other=0.).to(tl.float32)
                b = tl.load(w_ptr + ((g * COG + ro[:, None]) * (K * K) + tap)
                            * CG + rc[None, :],
                            mask=o_mask[:, None] & c_mask[None, :], other=0.)
                acc = _mma(acc, a, b, CAST, PREC)
            if COLS:
                tl.store(g_ptr + rm.to(tl.int64)[:, None] * (C * K * K) +
                         tap * C + g * CG + rc[None, :],
                         acc.to(g_ptr.dtype.element_ty),
                         mask=m_mask[:, None] & c_mask[None, :])
            if PROBS:
                if tap == (K * K) // 2:  # the same x for every dilation
                    xv = tl.load(x_ptr + (xrow + oh * STRIDE * sxh +
                                          ow * STRIDE * sxw)[:, None] +
                                 xcol[None, :],
                                 mask=m_mask[:, None] & c_mask[None, :],
                                 other=0.).to(tl.float32)
                    parts += tl.sum(acc * xv, axis=1)[:, None]
                else:
                    # a runtime loop: one [BM, BN] gather in flight at a
                    # time (an unrolled one keeps D of them in registers)
                    for di in range(D):
                        d = tl.load(dil_ptr + di)
                        ih = oh * STRIDE + KH * d
                        iw = ow * STRIDE + KW * d
                        ok = m_mask & _inside(ih, iw, H, W)
                        xv = tl.load(x_ptr + (xrow + ih * sxh +
                                              iw * sxw)[:, None] +
                                     xcol[None, :],
                                     mask=ok[:, None] & c_mask[None, :],
                                     other=0.).to(tl.float32)
                        s = tl.sum(acc * xv, axis=1)
                        parts += tl.where(rd[None, :] == di, s[:, None], 0.)
        if PROBS:
            P = HO * WO
            row = part_ptr + (g * tl.num_programs(1) + pid_c).to(
                tl.int64) * E
            tl.store(row + ((n * D)[:, None] + rd[None, :]) * P +
                     pix[:, None], parts,
                     mask=m_mask[:, None] & (rd < D)[None, :])

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
        ds = _dilations(dil_ptr, D)
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for tap in tl.static_range(K * K):
            KH = tap // K - K // 2
            KW = tap % K - K // 2
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
                acc += gv.to(tl.float32) * pv[:, None]
            else:
                for di in tl.static_range(D):
                    oh, ow, ok = _source_pixel(ih, iw, KH * ds[di],
                                               KW * ds[di], m_mask, HO, WO,
                                               STRIDE)
                    m = (n * (HO * WO) + oh * WO + ow).to(tl.int64)
                    pv = tl.load(p_ptr + n * spn + di * spd + oh * sph +
                                 ow * spw, mask=ok, other=0.)
                    gv = tl.load(gc_ptr + m[:, None] * (C * K * K) +
                                 tap * C + rc[None, :],
                                 mask=ok[:, None] & c_mask[None, :], other=0.)
                    acc += gv.to(tl.float32) * pv[:, None]
        tl.store(gx_ptr + n[:, None] * sxn + rc[None, :] * sxc +
                 ih[:, None] * sxh + iw[:, None] * sxw,
                 acc.to(gx_ptr.dtype.element_ty),
                 mask=m_mask[:, None] & c_mask[None, :])

    @triton.jit
    def bwd_input_gemm_kernel(go_ptr, w_ptr, p_ptr, psum_ptr, dil_ptr,
                               gx_ptr, NI, H, W, HO, WO, COG, CG, sgn, sgc,
                               sgh, sgw, spn, spd, sph, spw, sxn, sxc, sxh,
                               sxw, STRIDE: tl.constexpr, K: tl.constexpr,
                               D: tl.constexpr, CAST: tl.constexpr,
                               PREC: tl.constexpr, BM: tl.constexpr,
                               BN: tl.constexpr, BK: tl.constexpr):
        # grad_x[m, g*CG + c] = sum_{tap, o} A[m, tap, o] * Wt[g, o, tap, c]
        # (Wt: [G, COG, K*K, CG]), A[m, tap, o] = sum_d probs[n, d, q_d] *
        # grad_out[n, o, q_d] at the output pixels q_d * STRIDE + off_tap
        # * d = m (centre tap: one q, weighted by sum_d probs); no buffer
        pid_m = tl.program_id(0)
        pid_c = tl.program_id(1)
        g = tl.program_id(2)
        rm = pid_m * BM + tl.arange(0, BM)  # input pixels
        m_mask = rm < NI
        n, pix, ih, iw = _split(rm, H, W)
        rc = pid_c * BN + tl.arange(0, BN)
        c_mask = rc < CG
        ds = _dilations(dil_ptr, D)
        gorow = n * sgn
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for tap in tl.static_range(K * K):
            KH = tap // K - K // 2
            KW = tap % K - K // 2
            # per dilation: source pixel offset, existence, probability
            offs = ()
            oks = ()
            ps = ()
            for di in tl.static_range(D if tap != (K * K) // 2 else 1):
                oh, ow, ok = _source_pixel(ih, iw, KH * ds[di], KW * ds[di],
                                           m_mask, HO, WO, STRIDE)
                offs = offs + (oh * sgh + ow * sgw, )
                oks = oks + (ok, )
                if tap == (K * K) // 2:
                    ps = ps + (tl.load(psum_ptr + n * (HO * WO) + oh * WO +
                                       ow, mask=ok, other=0.), )
                else:
                    ps = ps + (tl.load(p_ptr + n * spn + di * spd +
                                       oh * sph + ow * spw, mask=ok,
                                       other=0.), )
            for o0 in range(0, COG, BK):
                ro = o0 + tl.arange(0, BK)
                o_mask = ro < COG
                goff = gorow[:, None] + (g * COG + ro)[None, :] * sgc
                if tap == (K * K) // 2:
                    a = _mixed(go_ptr, goff, offs, oks, ps, o_mask, 1)
                else:
                    a = _mixed(go_ptr, goff, offs, oks, ps, o_mask, D)
                b = tl.load(w_ptr + ((g * COG + ro[:, None]) * (K * K) + tap)
                            * CG + rc[None, :],
                            mask=o_mask[:, None] & c_mask[None, :], other=0.)
                acc = _mma(acc, a, b, CAST, PREC)
        tl.store(gx_ptr + n[:, None] * sxn + (g * CG + rc)[None, :] * sxc +
                 ih[:, None] * sxh + iw[:, None] * sxw,
                 acc.to(gx_ptr.dtype.element_ty),
                 mask=m_mask[:, None] & c_mask[None, :])

    @triton.jit
    def bwd_probs_kernel(part_ptr, gp_ptr, E, T, BLOCK: tl.constexpr):
        # grad_probs (flat [N, D, HO, WO] of a chunk, E elements) = the sum
        # over the T channel tiles of bwd_cols_kernel's partial sums
        # part[T, E] (a fixed order: deterministic)
        re = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = re < E
        acc = tl.zeros((BLOCK, ), dtype=tl.float32)
        ptr = part_ptr + re
        for t in range(T):
            acc += tl.load(ptr, mask=mask, other=0.)
            ptr += E  # 64-bit pointer arithmetic
        tl.store(gp_ptr + re, acc, mask=mask)

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
        kh = tap // K - K // 2
        kw = tap % K - K // 2
        ro = pid_o * BM + tl.arange(0, BM)
        o_mask = ro < COG
        co = g * COG + ro
        rc = pid_c * BN + tl.arange(0, BN)
        c_mask = rc < CG
        ci = g * CG + rc
        ds = _dilations(dil_ptr, D)
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        for m0 in range(0, NP, BK):
            rm = m0 + tl.arange(0, BK)
            m_mask = rm < NP
            n, pix, oh, ow = _split(rm, HO, WO)
            a = tl.load(go_ptr + n[None, :] * sgn + co[:, None] * sgc +
                        oh[None, :] * sgh + ow[None, :] * sgw,
                        mask=o_mask[:, None] & m_mask[None, :], other=0.)
            xoff = n[:, None] * sxn + ci[None, :] * sxc
            # the probabilities once per pixel tile; the taps' offsets
            ps = _probs(p_ptr, n, oh, ow, m_mask, spn, spd, sph, spw, D)
            offs, oks = _tap_offsets(oh, ow, ds, m_mask, H, W, sxh, sxw, kh,
                                     kw, STRIDE, D)
            b = _mixed(x_ptr, xoff, offs, oks, ps, c_mask, D)
            # acc[o, c] += a[o, m] @ b[m, c]
            if CAST:
                acc = tl.dot(a, b.to(a.dtype), acc)
            else:
                acc = tl.dot(a.to(tl.float32), b, acc, input_precision=PREC)
        tl.store(gw_ptr + co[:, None] * (CG * K * K) + rc[None, :] * (K * K)
                 + tap, acc.to(gw_ptr.dtype.element_ty),
                 mask=o_mask[:, None] & c_mask[None, :])
