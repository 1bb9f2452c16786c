"""Fused PAD in plain torch: one GEMM over a per-pixel mixed im2col.

The PAD convolution is linear in the input, so instead of one conv per
dilation (the reference) the mixed input is formed once per tap and
multiplied by the weight once::

    X[n, c, t, p] = sum_d probs[n, d, p] * x[n, c, p*s + off_t * dil_d]
    out[n, :, p]  = W[:, c, t] @ X[n, c, t, p] + bias

The centre tap has offset 0 for every dilation, so its mixed input is
``sum_d probs[:, d] * x`` (computed once, not D times). Forming ``X`` is a
few memory-bound passes; the GEMM costs exactly what a plain conv's GEMM
costs, so the total is about one conv plus memory traffic instead of D
convs.

Backward (a custom ``autograd.Function``, no intermediate D-fold buffers):

* ``grad_X = W^T @ grad_out`` (one GEMM), then ``grad_x`` is the weighted
  col2im of ``grad_X`` over the dilations and
  ``grad_probs[:, d] = sum_{c,t} grad_X * x_shifted_d``;
* ``grad_W = grad_out @ X^T`` (one GEMM; ``X`` is re-formed from the saved
  input instead of being kept alive between forward and backward);
* ``grad_bias = grad_out.sum``.

Half-precision inputs are computed in float32 and cast back (the CPU has no
fast half GEMM in general); float64 stays float64 (``gradcheck``).

The sparse hard path (:func:`pad_conv2d_hard_im2col`) computes only the
chosen dilation per pixel: when few pixels differ from the dominant
dilation, a plain conv at the dominant dilation plus one small stride-k
conv over the gathered taps of the differing pixels; otherwise a gather of the
channels-last padded input at the chosen taps into a patch image, then
one stride-k conv.

(A variant of the soft path that also used a channels-last patch image and
torch's conv kernels measured slower in forward+backward on the CPU than
the GEMMs below, so the soft path keeps explicit GEMMs.)

Works on any device; the dispatcher prefers it on the CPU only (on CUDA
cuDNN's convs or the Triton kernels are faster).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    'pad_conv2d_im2col', 'pad_conv2d_hard_im2col', 'tap_index',
    'SPARSE_MAX_SHARE'
]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _shifted(xp: Tensor, h0: int, w0: int, stride: int, h_out: int,
             w_out: int) -> Tensor:
    """View [N, C, H_out, W_out] of padded ``xp`` at offset (h0, w0)."""
    return xp[:, :, h0:h0 + (h_out - 1) * stride + 1:stride,
              w0:w0 + (w_out - 1) * stride + 1:stride]


def _taps(k: int) -> list[tuple[int, int, int]]:
    """(tap index, row offset, column offset) of a k x k kernel, centred."""
    c = (k - 1) // 2
    return [(i * k + j, i - c, j - c) for i in range(k) for j in range(k)]


def _mixed_im2col(x: Tensor, probs: Tensor, psum: Tensor,
                  dilations: Sequence[int], k: int, stride: int,
                  pad: int) -> Tensor:
    """Mixed im2col ``X`` [N, C, k*k, H_out, W_out] (see module doc)."""
    n, c, _, _ = x.shape
    h_out, w_out = probs.shape[-2:]
    xp = F.pad(x, (pad, pad, pad, pad))
    cols = x.new_empty(n, c, k * k, h_out, w_out)
    for t, dh, dw in _taps(k):
        dst = cols[:, :, t]
        if dh == 0 and dw == 0:  # shared centre tap
            torch.mul(_shifted(xp, pad, pad, stride, h_out, w_out), psum,
                      out=dst)
            continue
        for i, d in enumerate(dilations):
            v = _shifted(xp, pad + dh * d, pad + dw * d, stride, h_out, w_out)
            if i == 0:
                torch.mul(v, probs[:, i:i + 1], out=dst)
            else:
                dst.addcmul_(v, probs[:, i:i + 1])
    return cols


def _bmm_per_image(a: Tensor, b: Tensor) -> Tensor:
    """``a`` [G, M, K] @ ``b`` [N, G, K, P] -> [N, G, M, P] without
    materialising ``a`` once per image."""
    if a.shape[0] == 1:
        return torch.stack([torch.mm(a[0], b[i, 0]) for i in range(b.shape[0])
                            ]).unsqueeze(1)
    return torch.matmul(a, b)


def _depthwise(weight: Tensor, groups: int) -> bool:
    """One input and one output channel per group."""
    return weight.shape[1] == 1 and weight.shape[0] == groups


class _PADIm2col(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None,
                probs: Tensor, dilations: tuple[int, ...], stride: int,
                groups: int) -> Tensor:
        n, c, h, w = x.shape
        c_out, cg, k, _ = weight.shape
        h_out, w_out = probs.shape[-2:]
        pad = max(dilations) * (k - 1) // 2
        psum = probs.sum(1, keepdim=True)
        cols = _mixed_im2col(x, probs, psum, dilations, k, stride, pad)
        if _depthwise(weight, groups):
            # a per-channel dot over the k*k taps: no degenerate GEMMs
            out = torch.einsum('nctp,ct->ncp',
                               cols.view(n, c, k * k, h_out * w_out),
                               weight.view(c, k * k))
        else:
            w2 = weight.reshape(groups, c_out // groups, cg * k * k)
            out = _bmm_per_image(w2, cols.view(n, groups, cg * k * k,
                                               h_out * w_out))
        out = out.view(n, c_out, h_out, w_out)
        # the result must not be a view (autograd forbids in-place ops, such
        # as a following ReLU(inplace=True), on views made in a Function)
        out = out + bias.view(1, -1, 1, 1) if bias is not None else \
            out.clone()
        ctx.save_for_backward(x, weight, probs)
        ctx.conf = (dilations, stride, groups, pad, bias is not None)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight, probs = ctx.saved_tensors
        dilations, stride, groups, pad, has_bias = ctx.conf
        need_x, need_w, need_b, need_p = ctx.needs_input_grad[:4]
        n, c, h, w = x.shape
        c_out, cg, k, _ = weight.shape
        h_out, w_out = probs.shape[-2:]
        kk = k * k
        go = grad_out.contiguous().view(n, groups, c_out // groups,
                                        h_out * w_out)
        w2 = weight.reshape(groups, c_out // groups, cg * kk)
        psum = probs.sum(1, keepdim=True)
        gx = gw = gb = gp = None
        is_dw = _depthwise(weight, groups)
        if need_w and is_dw:
            cols = _mixed_im2col(x, probs, psum, dilations, k, stride, pad)
            gw = torch.einsum('ncp,nctp->ct', go.view(n, c, -1),
                              cols.view(n, c, kk, -1)).view_as(weight)
            del cols
        elif need_w:
            cols = _mixed_im2col(x, probs, psum, dilations, k, stride, pad)
            cols = cols.view(n, groups, cg * kk, h_out * w_out)
            if groups == 1:  # accumulate per image, no [N, ...] temporary
                gw = torch.mm(go[0, 0], cols[0, 0].t())
                for i in range(1, n):
                    gw.addmm_(go[i, 0], cols[i, 0].t())
            else:
                gw = torch.matmul(go, cols.transpose(-1, -2)).sum(0)
            gw = gw.view_as(weight)
            del cols
        if need_b and has_bias:
            gb = grad_out.sum((0, 2, 3))
        if need_x or need_p:
            if is_dw:
                gcols = (go.view(n, c, 1, -1) *
                         weight.view(1, c, kk, 1)).view(n, c, kk, h_out,
                                                        w_out)
            else:
                gcols = _bmm_per_image(w2.transpose(-1, -2), go).view(
                    n, c, kk, h_out, w_out)
            xp = F.pad(x, (pad, pad, pad, pad)) if need_p else None
            gxp = x.new_zeros(n, c, h + 2 * pad, w + 2 * pad) \
                if need_x else None
            acc = [x.new_zeros(n, c, h_out, w_out)
                   for _ in dilations] if need_p else None
            centre = None
            for t, dh, dw in _taps(k):
                g_t = gcols[:, :, t]
                if dh == 0 and dw == 0:
                    if need_x:
                        _shifted(gxp, pad, pad, stride, h_out,
                                 w_out).addcmul_(g_t, psum)
                    if need_p:
                        centre = (g_t * _shifted(xp, pad, pad, stride, h_out,
                                                 w_out)).sum(1)
                    continue
                for i, d in enumerate(dilations):
                    h0, w0 = pad + dh * d, pad + dw * d
                    if need_x:
                        _shifted(gxp, h0, w0, stride, h_out,
                                 w_out).addcmul_(g_t, probs[:, i:i + 1])
                    if need_p:
                        acc[i].addcmul_(
                            g_t, _shifted(xp, h0, w0, stride, h_out, w_out))
            if need_x:
                gx = gxp[:, :, pad:pad + h, pad:pad + w]
            if need_p:
                gp = torch.stack([a.sum(1) + centre for a in acc], 1)
        return gx, gw, gb, gp, None, None, None


def pad_conv2d_im2col(input: Tensor,
                      weight: Tensor,
                      bias: Tensor | None,
                      probs: Tensor,
                      dilations: Sequence[int],
                      stride: int = 1,
                      groups: int = 1) -> Tensor:
    """Mixed-im2col PAD convolution (same contract as
    :func:`pad_mm.ops.pad_conv2d_reference`).

    Shapes: input [N, C_in, H, W], weight [C_out, C_in/groups, k, k],
    bias [C_out] or None, probs [N, D, H_out, W_out] ->
    [N, C_out, H_out, W_out] (contiguous NCHW, dtype of ``input``).
    Differentiable in input, weight, bias and probs.
    """
    dtype = input.dtype
    cdt = _compute_dtype(dtype)
    args = [t if t is None else t.to(cdt).contiguous()
            for t in (input, weight, bias, probs)]
    # computed in float32 (or float64) whatever autocast says
    with torch.autocast(input.device.type, enabled=False):
        out = _PADIm2col.apply(*args, tuple(dilations), stride, groups)
    return out.to(dtype)


def _padded_cl(x: Tensor, pad: int) -> Tensor:
    """Zero-padded channels-last copy [N, H + 2 pad, W + 2 pad, C]."""
    n, c, h, w = x.shape
    xp = x.new_zeros(n, h + 2 * pad, w + 2 * pad, c)
    xp[:, pad:pad + h, pad:pad + w].copy_(x.permute(0, 2, 3, 1))
    return xp


def _patch_image(z6: Tensor) -> Tensor:
    """[N, H_out, k, W_out, k, C] -> NCHW view (channels_last strides)
    [N, C, k*H_out, k*W_out]: every output pixel's k x k input patch laid
    out as a k x k block, so a stride-k conv with the layer's weight
    computes the conv at the gathered taps in oneDNN's conv kernels."""
    n, h_out, k, w_out, _, c = z6.shape
    return z6.view(n, h_out * k, w_out * k, c).permute(0, 3, 1, 2)


# Share of pixels (of the batch) whose index differs from the dominant one
# up to which the sparse hard path (plain conv at the dominant dilation +
# recomputation of the differing pixels) is used; above it the full gather
# (one conv over the gathered taps of every pixel) runs. Measured on the
# CPU with ``benchmark_pad.py --sweep-share`` (see docs/performance.md,
# "Sparse hard inference"): the sparse path is faster up to about 0.3 - 0.4
# of the pixels at the ResNet layer4 shapes.
SPARSE_MAX_SHARE = 0.3


def _hard_gather(input: Tensor, weight: Tensor, bias: Tensor | None,
                 index: Tensor, dilations: Sequence[int], stride: int,
                 groups: int) -> Tensor:
    """Full gather: every pixel's chosen taps into a patch image, one
    stride-k conv (see :func:`pad_conv2d_hard_im2col`)."""
    k = weight.shape[-1]
    dtype = input.dtype
    cdt = _compute_dtype(dtype)
    x = input.to(cdt)
    n, c, h, w = x.shape
    h_out, w_out = index.shape[-2:]
    pad = max(dilations) * (k - 1) // 2
    xp = _padded_cl(x, pad)
    hp, wp = xp.shape[1:3]
    rows = xp.view(n * hp * wp, c)
    dev = x.device
    # flat row of each (n, oh, kh, ow, kw) in the padded channels-last input
    dil = torch.tensor(dilations, device=dev)[index].view(
        n, h_out, 1, w_out, 1)
    off = torch.arange(k, device=dev) - (k - 1) // 2
    oh = torch.arange(h_out, device=dev) * stride + pad
    ow = torch.arange(w_out, device=dev) * stride + pad
    base = torch.arange(n, device=dev).view(n, 1, 1, 1, 1) * (hp * wp)
    flat = (base + (oh.view(1, -1, 1, 1, 1) + dil * off.view(1, 1, k, 1, 1))
            * wp + ow.view(1, 1, 1, -1, 1) + dil * off.view(1, 1, 1, 1, k))
    z6 = rows.index_select(0, flat.view(-1)).view(n, h_out, k, w_out, k, c)
    out = F.conv2d(_patch_image(z6), weight.to(cdt),
                   None if bias is None else bias.to(cdt), k, 0, 1, groups)
    fmt = torch.channels_last if _is_channels_last(input) else \
        torch.contiguous_format
    return out.to(dtype).contiguous(memory_format=fmt)


def tap_index(hi: Tensor, wi: Tensor, dil: Tensor, k: int, stride: int,
              h: int, w: int) -> tuple[Tensor, Tensor]:
    """Where the k x k taps of M output pixels fall in an h x w input plane.

    Args:
        hi, wi: [M] output row and column of each pixel; dil: [M] its
            dilation (integer tensors); k: kernel size (odd); stride: conv
            stride; h, w: input plane size.

    Returns:
        ``(flat, valid)``, both [k, M, k] in (kernel row, pixel, kernel
        column) order, the row-major layout of a [k, M*k] patch image:
        ``flat`` = row * w + col with row and col clamped into the plane,
        ``valid`` = whether the tap lies inside it (zero padding outside).
        No shape names M, so a traced graph works for any count.
    """
    off = torch.arange(k, device=hi.device, dtype=hi.dtype) - (k - 1) // 2
    d = dil.view(1, -1, 1)
    rr = (hi * stride).view(1, -1, 1) + d * off.view(k, 1, 1)
    cc = (wi * stride).view(1, -1, 1) + d * off.view(1, 1, k)
    valid = ((rr >= 0) & (rr < h)) & ((cc >= 0) & (cc < w))
    return rr.clamp(0, h - 1) * w + cc.clamp(0, w - 1), valid


def _hard_sparse(input: Tensor, weight: Tensor, bias: Tensor | None,
                 index: Tensor, dilations: Sequence[int], stride: int,
                 groups: int, dom: int) -> Tensor:
    """Plain conv at ``dilations[dom]`` for every pixel, then the pixels
    whose index differs (at least one: :func:`pad_conv2d_hard_im2col`
    runs a plain conv when none does) are recomputed at their own dilation
    and written over.

    Per image, the k x k taps of its differing pixels are gathered from
    that image alone (``index_select`` over the [C_in, H*W] plane of an
    NCHW input, or over the [H*W, C_in] rows of a channels-last one;
    out-of-image taps are clamped, then zeroed) into a patch image
    [1, C_in, k, M_b*k]; the images' patches side by side go through one
    stride-k conv with the layer's weight, and ``index_copy_`` writes each
    image's outputs over the dominant conv's. On the CPU this measured
    faster than gathering from the whole batch at once (strided reads),
    than an explicit GEMM over the same taps (oneDNN's conv beats the BLAS
    GEMM at these sizes) and than a conv over each blob's bounding box
    (docs/performance.md, "Sparse hard inference").
    """
    k = weight.shape[-1]
    d = dilations[dom]
    out = F.conv2d(input, weight, bias, stride, d * (k - 1) // 2, d, groups)
    diff = index != dom
    n, c, h, w = input.shape
    h_out, w_out = index.shape[-2:]
    per_image = diff.view(n, -1).sum(1).tolist()
    cdt = _compute_dtype(input.dtype)
    x = input.to(cdt)
    wc = weight.to(cdt)
    bc = None if bias is None else bias.to(cdt)
    dev = input.device
    dil_of = torch.tensor(dilations, device=dev)
    x_cl, out_cl = _is_channels_last(x), _is_channels_last(out)
    patches, pixels = [], []
    for b, mb in enumerate(per_image):
        if mb == 0:
            continue
        pix = diff[b].reshape(-1).nonzero().view(-1)  # flat output pixels
        hi = torch.div(pix, w_out, rounding_mode='floor')
        flat, valid = tap_index(hi, pix - hi * w_out,
                                dil_of[index[b].reshape(-1)[pix]], k,
                                stride, h, w)
        flat = flat.view(-1)
        if x_cl:  # [H*W, C] rows -> channels-last patch image
            taps = x[b].permute(1, 2, 0).reshape(h * w, c).index_select(
                0, flat).view(1, k, mb * k, c).permute(0, 3, 1, 2)
        else:
            taps = x[b].reshape(c, h * w).index_select(1, flat).view(
                1, c, k, mb * k)
        if not bool(valid.all()):
            taps = taps * valid.view(1, 1, k, mb * k)
        patches.append(taps)
        pixels.append((b, pix))
    # one conv for the whole batch (oneDNN reorders the weight per call)
    patch = patches[0] if len(patches) == 1 else torch.cat(patches, 3)
    res = F.conv2d(patch, wc, bc, k, 0, 1, groups).view(out.shape[1], -1)
    res = res.to(out.dtype)
    start = 0
    for b, pix in pixels:
        part = res[:, start:start + pix.numel()]
        start += pix.numel()
        if out_cl:
            out[b].permute(1, 2, 0).view(h_out * w_out, -1).index_copy_(
                0, pix, part.t())
        else:
            out[b].view(-1, h_out * w_out).index_copy_(1, pix, part)
    return out


def pad_conv2d_hard_im2col(input: Tensor,
                           weight: Tensor,
                           bias: Tensor | None,
                           index: Tensor,
                           dilations: Sequence[int],
                           stride: int = 1,
                           groups: int = 1,
                           max_sparse_share: float | None = None) -> Tensor:
    """Sparse hard PAD: only the chosen dilation is computed per pixel.

    ``out[n, :, p] = conv at pixel p with dilation dilations[index[n, p]]``.
    Two strategies, chosen by the share of pixels whose index differs from
    the dominant one (the most frequent index in the batch):

    * share <= ``max_sparse_share`` (default :data:`SPARSE_MAX_SHARE`,
      measured): a plain conv at the dominant dilation for every pixel,
      then the differing pixels' k x k taps (at their own dilation) are
      gathered into a small patch image and one stride-k conv recomputes
      them (:func:`_hard_sparse`). With no differing pixel this is
      exactly one plain conv.
    * otherwise the taps of every pixel's chosen dilation are gathered
      (rows of the channels-last padded input) into a "patch image"
      [N, C_in, k*H_out, k*W_out] and one stride-k conv with the layer's
      weight computes all pixels: one conv's worth of MACs (on the CPU
      this ran faster than an explicit GEMM over the same gathered taps).

    Shapes: input [N, C_in, H, W], weight [C_out, C_in/groups, k, k],
    bias [C_out] or None, index [N, H_out, W_out] (int64 in [0, D)) ->
    [N, C_out, H_out, W_out]. Differentiable in input, weight and bias.
    """
    if max_sparse_share is None:
        max_sparse_share = SPARSE_MAX_SHARE
    counts = torch.bincount(index.reshape(-1), minlength=len(dilations))
    dom = int(counts.argmax())
    other = index.numel() - int(counts[dom])
    if other == 0:  # one dilation everywhere: a plain conv
        d = dilations[dom]
        return F.conv2d(input, weight, bias, stride,
                        d * (weight.shape[-1] - 1) // 2, d, groups)
    if other <= max_sparse_share * index.numel():
        return _hard_sparse(input, weight, bias, index, dilations, stride,
                            groups, dom)
    return _hard_gather(input, weight, bias, index, dilations, stride,
                        groups)


def _is_channels_last(x: Tensor) -> bool:
    return not x.is_contiguous() and x.is_contiguous(
        memory_format=torch.channels_last)
