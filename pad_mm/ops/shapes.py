"""Shape arithmetic shared by the PAD ops, the layer and the tools."""
from __future__ import annotations

__all__ = ['conv_out_size', 'pad_padding']


def pad_padding(k: int, dilation: int = 1) -> int:
    """The padding ``dilation * (k - 1) // 2`` of a PAD branch: every
    dilation of an odd ``k`` x ``k`` kernel keeps the same output size."""
    return dilation * (k - 1) // 2


def _check_int(name: str, value, low: int, extra: str = '') -> None:
    # traced/symbolic sizes (tensors, SymInts) pass unchecked
    if isinstance(value, (bool, float)) or (isinstance(value, int)
                                            and value < low):
        raise ValueError(f'{name} must be an int >= {low}{extra}, got '
                         f'{value!r}')


def conv_out_size(size: int,
                  k: int,
                  stride: int = 1,
                  dilation: int = 1,
                  padding: int | None = None) -> int:
    """Output size of a convolution along one axis.

    ``(size + 2 * padding - dilation * (k - 1) - 1) // stride + 1``, with
    ``padding=None`` meaning the PAD padding :func:`pad_padding` (then the
    result is ``(size - 1) // stride + 1`` for every dilation of an odd
    ``k``). Raises ValueError for a non-positive ``k``, ``stride`` or
    ``dilation``, a negative ``size`` or ``padding``, a bool or a float;
    symbolic sizes (traced tensors, SymInts) are not checked.
    """
    for name, value, low in (('size', size, 0), ('k', k, 1),
                             ('stride', stride, 1),
                             ('dilation', dilation, 1)):
        _check_int(name, value, low)
    if padding is None:
        padding = pad_padding(k, dilation)
    else:
        _check_int('padding', padding, 0, ' or None')
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1
