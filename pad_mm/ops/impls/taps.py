"""Where the k x k taps of hard-PAD pixels are, as rows of the input.

The input becomes channels-last rows ``[N*H*W + 1, C_in]`` (:func:`tap_rows`;
the extra zero row is where out-of-image taps point: zero padding without a
padded copy); :func:`tap_index` and :func:`tap_rows_index` give each
pixel's k*k tap positions at its own dilation (also used by the exported
graph, :mod:`.export_hard`); :func:`tap_table` caches every pixel's rows at
each dilation per geometry. :func:`gemm_matrix` is the weight in the
matching column order.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    'tap_index', 'tap_rows', 'tap_rows_index', 'all_tap_rows_index',
    'tap_table', 'clear_tables', 'table_cache_bytes', 'gemm_matrix',
    'is_channels_last', 'TABLE_MAX_BYTES', 'TABLES_MAX_BYTES'
]

def tap_index(hi: Tensor, wi: Tensor, dil: Tensor, k: int, stride: int,
              h: int, w: int) -> tuple[Tensor, Tensor]:
    """Where the k x k taps of M output pixels fall in an h x w input plane.

    Args:
        hi, wi: [M] output row and column of each pixel; dil: [M] its
            dilation (integer tensors); k: kernel size (odd); stride: conv
            stride; h, w: input plane size.

    Returns:
        ``(flat, valid)``, both [M, k, k] (pixel, kernel row, kernel
        column): ``flat`` = row * w + col with row and col clamped into the
        plane, ``valid`` = whether the tap lies inside it (zero padding
        outside). No shape names M, so a traced graph works for any count.
    """
    off = torch.arange(k, device=hi.device, dtype=hi.dtype) - (k - 1) // 2
    d = dil.view(-1, 1, 1)
    rr = (hi * stride).view(-1, 1, 1) + d * off.view(1, k, 1)
    cc = (wi * stride).view(-1, 1, 1) + d * off.view(1, 1, k)
    valid = ((rr >= 0) & (rr < h)) & ((cc >= 0) & (cc < w))
    return rr.clamp(0, h - 1) * w + cc.clamp(0, w - 1), valid



def tap_rows(x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """[N*H*W + 1, C_in]: the pixels of ``x`` [N, C_in, H, W] as
    channels-last rows (in ``dtype``, default the input's), the last row
    zero (where :func:`tap_rows_index` sends out-of-image taps).
    Traceable (a concatenation) while gradients or a graph are recorded,
    a copy into one buffer otherwise."""
    n, c, h, w = x.shape
    dtype = x.dtype if dtype is None else dtype
    if (torch.is_grad_enabled() and x.requires_grad) or \
            torch.jit.is_tracing() or torch.compiler.is_exporting():
        return torch.cat([x.permute(0, 2, 3, 1).reshape(-1, c).to(dtype),
                          x.new_zeros(1, c, dtype=dtype)])
    rows = x.new_empty(n * h * w + 1, c, dtype=dtype)
    if is_channels_last(x):
        rows[:-1].view(n, h, w, c).copy_(x.permute(0, 2, 3, 1))
    else:  # per image a 2-D transpose (torch's blocked transpose copy)
        for b in range(n):
            rows[b * h * w:(b + 1) * h * w].copy_(x[b].reshape(c, h * w).t())
    rows[-1].zero_()
    return rows


def tap_rows_index(bi: Tensor, hi: Tensor, wi: Tensor, dil: Tensor, k: int,
                   stride: int, n: int, h: int, w: int) -> Tensor:
    """[M*k*k] rows of :func:`tap_rows` holding the k x k taps of output
    pixels (bi, hi, wi) [M] at dilations ``dil`` [M] (pixel-major, then
    kernel row, kernel column; out-of-image taps -> the zero row)."""
    flat, valid = tap_index(hi, wi, dil, k, stride, h, w)
    flat = flat + (bi * (h * w)).view(-1, 1, 1)
    return torch.where(valid, flat, n * h * w).reshape(-1)


def all_tap_rows_index(index: Tensor, dilations: Sequence[int], k: int,
                       stride: int, h: int, w: int) -> Tensor:
    """:func:`tap_rows_index` of every output pixel of ``index``
    [N, H_out, W_out] (pixel order n, row, column) at its chosen
    dilation, for an input of size h x w."""
    n, h_out, w_out = index.shape
    dev = index.device
    bi = torch.arange(n, device=dev).view(n, 1, 1).expand(n, h_out, w_out)
    hi = torch.arange(h_out, device=dev).view(1, h_out, 1).expand_as(bi)
    wi = torch.arange(w_out, device=dev).view(1, 1, w_out).expand_as(bi)
    dil = torch.tensor(dilations, device=dev)[index]
    return tap_rows_index(bi.reshape(-1), hi.reshape(-1), wi.reshape(-1),
                          dil.reshape(-1), k, stride, n, h, w)


# (N, H, W, H_out, W_out, k, stride, dilations, device) -> [D, P, k*k]
_TABLES: dict[tuple, Tensor] = {}
TABLE_MAX_BYTES = 1 << 24  # one table; larger geometries compute directly
TABLES_MAX_BYTES = 1 << 26  # all tables; the oldest are dropped


def tap_table(index: Tensor, dilations: Sequence[int], k: int,
               stride: int, h: int, w: int) -> Tensor | None:
    """[D, N*H_out*W_out, k*k]: :func:`all_tap_rows_index` of every pixel
    at each dilation, cached per geometry (the eager paths then pick each
    pixel's rows with one gather instead of a dozen small index ops).
    None (compute directly) above ``TABLE_MAX_BYTES``."""
    n, h_out, w_out = index.shape
    num_d, kk = len(dilations), k * k
    if num_d * n * h_out * w_out * kk * 8 > TABLE_MAX_BYTES:
        return None
    key = (n, h, w, h_out, w_out, k, stride, tuple(dilations),
           str(index.device))
    table = _TABLES.get(key)
    if table is None:
        table = torch.stack([
            all_tap_rows_index(torch.full_like(index, i), dilations, k,
                               stride, h, w) for i in range(num_d)
        ]).view(num_d, -1, kk)
        total = sum(t.nbytes for t in _TABLES.values()) + table.nbytes
        while _TABLES and total > TABLES_MAX_BYTES:  # drop the oldest
            total -= _TABLES.pop(next(iter(_TABLES))).nbytes
        _TABLES[key] = table
    return table


def gemm_matrix(weight: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """[C_out, k*k*C_in] matrix of a groups=1 weight [C_out, C_in, k, k],
    columns in the (kernel row, kernel column, channel) order of
    :func:`tap_rows_index` rows; in ``dtype`` (default the weight's)."""
    c_out = weight.shape[0]
    w = weight if dtype is None else weight.to(dtype)
    return w.permute(0, 2, 3, 1).reshape(c_out, -1)



def is_channels_last(x: Tensor) -> bool:
    """Whether ``x`` is channels-last and not (also) contiguous NCHW."""
    return not x.is_contiguous() and x.is_contiguous(
        memory_format=torch.channels_last)


def clear_tables() -> None:
    """Drop every cached :func:`tap_table` (a process-fresh cache)."""
    _TABLES.clear()


def table_cache_bytes() -> int:
    """Bytes held by the cached tap tables (at most
    :data:`TABLES_MAX_BYTES`)."""
    return sum(t.nbytes for t in _TABLES.values())
