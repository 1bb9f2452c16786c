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

The hard path (one dilation per pixel) is :mod:`.hard_im2col`.

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

from ..shapes import pad_padding
from .base import Geometry, first_order_only, implementation

__all__ = ['pad_conv2d_im2col']


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
        pad = pad_padding(k, max(dilations))
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
    @first_order_only  # no graph of the gradients: no double backward
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


@implementation
def pad_conv2d_im2col(input: Tensor, weight: Tensor, bias: Tensor | None,
                      probs: Tensor, geometry: Geometry) -> Tensor:
    """Soft PAD (:class:`~.base.PADImpl`) as a mixed im2col and one GEMM:
    contiguous NCHW output in the dtype of ``input`` (half computed in
    float32, whatever autocast says)."""
    dtype = input.dtype
    cdt = _compute_dtype(dtype)
    args = [t if t is None else t.to(cdt).contiguous()
            for t in (input, weight, bias, probs)]
    # computed in float32 (or float64) whatever autocast says
    with torch.autocast(input.device.type, enabled=False):
        out = _PADIm2col.apply(*args, *geometry)
    return out.to(dtype)
