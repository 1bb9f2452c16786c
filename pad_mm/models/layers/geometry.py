"""Which conv geometries a PAD layer can take over."""
from __future__ import annotations

__all__ = ['non_adaptive_reason']


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def non_adaptive_reason(kernel_size, stride=1, padding=0, dilation=1,
                        padding_mode: str = 'zeros') -> str | None:
    """Why a conv with this geometry cannot be made adaptive, or None if
    it can (odd square kernel > 1, square stride and dilation, padding
    ``dilation*(k-1)//2`` (or ``'same'`` with stride 1), zero padding)."""
    k, s, d = _pair(kernel_size), _pair(stride), _pair(dilation)
    p = padding if isinstance(padding, str) else _pair(padding)
    if k[0] != k[1] or k[0] % 2 == 0 or k[0] == 1:
        return f'kernel_size={k} is not an odd square kernel > 1'
    if s[0] != s[1]:
        return f'stride={s} is not square'
    if d[0] != d[1]:
        return f'dilation={d} is not square'
    if isinstance(p, str):
        if p != 'same' or s[0] != 1:
            return f'padding={p!r} with stride {s}'
    elif p[0] != p[1] or p[0] != d[0] * (k[0] - 1) // 2:
        return (f'padding={p} differs from dilation*(k-1)//2='
                f'{d[0] * (k[0] - 1) // 2}')
    if padding_mode != 'zeros':
        return f"padding_mode={padding_mode!r} is not 'zeros'"
    return None
