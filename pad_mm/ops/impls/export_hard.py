"""Hard PAD for exported graphs: only the chosen dilation per pixel.

While a model is traced for export (``torch.onnx.export``,
``torch.jit.trace``, ``torch.export``), :func:`pad_conv2d_hard` runs
:func:`pad_conv2d_hard_export` instead of the reference's D full convs.
It records one of two graphs, chosen, as on the CPU path
(:mod:`.hard_im2col`), by the size of the example's map:

* maps of fewer than ``SPARSE_MIN_PIXELS`` output pixels per image: every
  pixel at its chosen dilation, as a ``Gather`` of its k x k taps from the
  channels-last rows of the input (plus one zero row for the padding) and
  one ``MatMul`` with the weight as a [k*k*C_in, C_out] matrix. No conv:
  on small maps a runtime's conv is itself an im2col + GEMM of this size,
  and the sparse graph's extra nodes cost more than they save;
* larger maps, the dominant-plus-differing-pixels graph:

1. the dominant index ``dom`` = ArgMax of the per-dilation pixel counts
   (ReduceSum over ``index == arange(D)``);
2. one plain conv at ``dilations[dom]`` for every pixel (ONNX ``Conv``
   needs a static dilation, see below);
3. ``NonZero(index != dom)``: the flat positions of the M differing pixels
   (a dynamic shape);
4. ``Gather`` of their k x k taps at their own dilation (clamped
   coordinates times a validity mask for the zero padding), one ``MatMul``
   with the weight [C_out, C_in*k*k], and ``ScatterElements`` of the M
   results over the dominant conv's output.

Both give the right output at any input size; the size of the example
only decides which is recorded.

Step 2 needs the dominant dilation as a constant of the graph:

* ``torch.export`` (fake tensors, no values): ``torch.cond`` over the D
  dilations (a chain of D - 1 conditionals on ``dom``), so the exported
  program picks the dominant dilation of each input at run time;
* ``torch.jit.trace`` and the TorchScript-based ``torch.onnx.export``
  (``dynamo=False``): tracing cannot record a branch, so the dominant
  dilation of the *example input* is recorded as the conv's dilation
  (trace with a representative input). The output is right for every
  input (step 3 recomputes every pixel whose index differs from the
  recorded one); only the speed depends on the recorded dilation staying
  dominant.

Torch only (no OpenMMLab import).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..shapes import conv_out_size, pad_padding
from .base import Geometry, implementation
from .hard_im2col import SPARSE_MIN_PIXELS
from .taps import all_tap_rows_index, gemm_matrix, tap_index, tap_rows

__all__ = ['pad_conv2d_hard_export', 'export_tracing']


def export_tracing() -> bool:
    """Whether a graph is being recorded by ``torch.jit.trace`` /
    TorchScript ONNX export or by ``torch.export`` (the cases this
    implementation is for; scripting and ``torch.compile`` keep the
    reference)."""
    return torch.jit.is_tracing() or torch.compiler.is_exporting() or \
        torch.onnx.is_in_onnx_export()


def _conv(x: Tensor, weight: Tensor, bias: Tensor | None, d: int,
          stride: int, groups: int, k: int) -> Tensor:
    # k is passed as a Python int: torch.export gives cond operands
    # symbolic shapes, and the D branches must have the same output size
    return F.conv2d(x, weight, bias, stride, pad_padding(k, d), d, groups)


def _dominant_conv_cond(x: Tensor, weight: Tensor, bias: Tensor | None,
                        dom: Tensor, dilations: Sequence[int], stride: int,
                        groups: int) -> Tensor:
    """Conv at ``dilations[dom]`` with ``dom`` a 0-dim tensor, as a chain
    of ``torch.cond`` (for ``torch.export``). Weight and bias are closed
    over (cond operands get symbolic shapes; the kernel size must stay a
    constant for the D branches to have the same output size)."""
    n, c, h, w = (int(v) for v in x.shape)
    c_out, cg, k, _ = (int(v) for v in weight.shape)
    h_out, w_out = conv_out_size(h, k, stride), conv_out_size(w, k, stride)

    def branch(i: int):
        def conv_i(x_: Tensor) -> Tensor:
            # static shapes inside the branch (cond gives its inputs
            # symbolic ones, and the D branches must agree on the size)
            y = _conv(x_.reshape(n, c, h, w),
                      weight.reshape(c_out, cg, k, k), bias, dilations[i],
                      stride, groups, k)
            return y.reshape(n, c_out, h_out, w_out)

        if i == len(dilations) - 1:
            return conv_i

        def fn(x_: Tensor) -> Tensor:
            return torch.cond(dom == i, conv_i, branch(i + 1), (x_, ))
        return fn

    return branch(0)(x)


def _full_graph(input: Tensor, weight: Tensor, bias: Tensor | None,
                index: Tensor, dilations: Sequence[int], stride: int,
                groups: int) -> Tensor:
    """Every pixel at its chosen dilation: Gather of its k x k taps from
    the channels-last rows of the input (plus a zero row for the
    padding), one MatMul with the weight as a [k*k*C_in, C_out] matrix
    (grouped: one batched MatMul over the groups). No shape names the
    pixel count, so the graph runs at any input size."""
    c = input.shape[1]
    c_out, cg, k, _ = weight.shape
    kk = k * k
    h_out, w_out = index.shape[-2], index.shape[-1]
    flat = all_tap_rows_index(index, dilations, k, stride, input.shape[2],
                              input.shape[3])
    taps = tap_rows(input).index_select(0, flat)  # [P*k*k, C_in]
    if groups == 1:
        res = torch.matmul(taps.reshape(-1, kk * c),
                           gemm_matrix(weight).t())
    else:
        go = c_out // groups
        a = taps.reshape(-1, kk, groups, cg).permute(2, 0, 1, 3).reshape(
            groups, -1, kk * cg)  # [G, P, k*k*C_g]
        wg = weight.reshape(groups, go, cg, k, k).permute(
            0, 3, 4, 2, 1).reshape(groups, kk * cg, go)
        res = torch.matmul(a, wg).permute(1, 0, 2).reshape(-1, c_out)
    if bias is not None:
        res = res + bias
    return res.reshape(-1, h_out, w_out, c_out).permute(0, 3, 1,
                                                        2).contiguous()


@implementation
def pad_conv2d_hard_export(input: Tensor, weight: Tensor, bias: Tensor | None,
                           index: Tensor, geometry: Geometry) -> Tensor:
    """Hard PAD (:class:`~.base.PADImpl`, ``sel`` = index) as a traceable
    dominant-plus-differing-pixels graph (see the module docstring); also
    correct when run eagerly (used by the tests)."""
    dilations, stride, groups = geometry
    n, c, h, w = input.shape
    c_out, cg, k, _ = weight.shape
    kk = k * k
    num_d = len(dilations)
    h_out, w_out = index.shape[-2], index.shape[-1]
    if int(h_out) * int(w_out) < SPARSE_MIN_PIXELS:
        # small maps: as on the CPU path, every pixel by gather + GEMM
        return _full_graph(input, weight, bias, index, dilations, stride,
                           groups)
    idx = index.reshape(-1)
    counts = (idx.unsqueeze(1) == torch.arange(
        num_d, device=idx.device)).sum(0)
    dom_t = counts.argmax()
    if torch.compiler.is_exporting():
        out = _dominant_conv_cond(input, weight, bias, dom_t, dilations,
                                  stride, groups)
        dom = dom_t
    else:
        # tracing records the example's dominant dilation as a constant
        dom = int(dom_t)
        out = _conv(input, weight, bias, dilations[dom], stride, groups, k)
    # flat positions p = (n * H_out + oh) * W_out + ow of differing pixels
    pos = torch.nonzero(idx != dom).reshape(-1)
    hw = h_out * w_out
    ni = torch.div(pos, hw, rounding_mode='floor')
    rem = pos - ni * hw
    hi = torch.div(rem, w_out, rounding_mode='floor')
    wi = rem - hi * w_out
    dil = torch.tensor(dilations, device=input.device,
                       dtype=pos.dtype)[idx[pos]]
    flat, valid = tap_index(hi, wi, dil, k, stride, h, w)  # [M, k, k]
    # flat (n, row, col) position in the [C, N*H*W] planes, reordered to
    # (kh, kw, M) like the weight's [C_out, C_in*k*k] (the index, not the
    # C times larger taps, is transposed)
    src = (ni.view(-1, 1, 1) * (h * w) + flat).permute(1, 2, 0)
    planes = input.transpose(0, 1).reshape(c, n * h * w)  # [C, N*H*W]
    taps = planes.index_select(1, src.reshape(-1)).view(c, kk, -1)
    taps = taps * valid.permute(1, 2, 0).reshape(1, kk, -1).to(
        taps.dtype)  # [C, k*k, M]
    # no reshape names M: a traced graph must not record the example's
    # count of differing pixels (M may be 0 for another input)
    if groups == 1:
        res = torch.matmul(weight.reshape(c_out, c * kk),
                           taps.flatten(0, 1))
    else:
        res = torch.matmul(
            weight.reshape(groups, c_out // groups, cg * kk),
            taps.unflatten(0, (groups, cg)).flatten(1, 2)).flatten(0, 1)
    if bias is not None:
        res = res + bias.view(-1, 1)
    # write the M recomputed pixels over the dominant conv's output
    flat = out.transpose(0, 1).reshape(c_out, n * hw)
    flat = flat.scatter(1, pos.unsqueeze(0).expand(c_out, -1), res)
    return flat.view(c_out, n, h_out, w_out).transpose(0, 1).contiguous()
