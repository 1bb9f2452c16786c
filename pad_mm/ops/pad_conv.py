"""The PAD convolution: a conv whose dilation is mixed per output pixel.

``pad_conv2d(input, weight, bias, probs, dilations, stride=1, groups=1)`` is
the public functional contract. It checks its arguments, then dispatches to
the fastest registered implementation for the inputs (``impl='auto'``) or to
the one named; ``'reference'`` (one conv per dilation) is always there and
is the ground truth.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor

from .reference import pad_conv2d_reference

__all__ = [
    'pad_conv2d', 'check_dilations', 'register_impl', 'available_impls',
    'select_impl'
]

PADImpl = Callable[..., Tensor]
# name -> (function, predicate(input, weight, probs, dilations, stride,
# groups) telling whether the implementation supports these inputs)
_IMPLS: dict[str, tuple[PADImpl, Callable[..., bool]]] = {
    'reference': (pad_conv2d_reference, lambda *args: True),
}
# order tried by impl='auto'; 'reference' always last
_AUTO_ORDER: list[str] = ['reference']


def register_impl(name: str,
                  fn: PADImpl,
                  supports: Callable[..., bool],
                  priority: int = 0) -> None:
    """Register a PAD implementation for ``impl='auto'`` and by name.

    ``supports(input, weight, probs, dilations, stride, groups)`` returns
    whether ``fn`` handles these inputs; ``auto`` takes the first supporting
    one in registration order of decreasing ``priority``.
    """
    _IMPLS[name] = (fn, supports)
    if name not in _AUTO_ORDER:
        _AUTO_ORDER.insert(min(priority, len(_AUTO_ORDER) - 1), name)


def available_impls() -> list[str]:
    """Names accepted by ``pad_conv2d(..., impl=...)``."""
    return ['auto'] + list(_IMPLS)


def check_dilations(dilations: Sequence[int],
                    name: str = 'dilations') -> tuple[int, ...]:
    """Validate a set of dilation options and return it as a tuple.

    Allowed: a non-empty list/tuple of distinct positive ints.
    """
    if isinstance(dilations, (str, bytes)) or not isinstance(
            dilations, Sequence):
        raise TypeError(f'{name} must be a non-empty list/tuple of distinct '
                        f'positive ints, got {dilations!r}')
    if len(dilations) == 0:
        raise ValueError(f'{name} must be a non-empty list/tuple of distinct '
                         f'positive ints, got {dilations!r}')
    for d in dilations:
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f'{name} must contain ints only, got {d!r} in '
                            f'{dilations!r}')
        if d < 1:
            raise ValueError(f'{name} must contain positive ints (>= 1), '
                             f'got {d!r} in {dilations!r}')
    if len(set(dilations)) != len(dilations):
        raise ValueError(f'{name} must not contain duplicates, got '
                         f'{dilations!r}')
    return tuple(int(d) for d in dilations)


def _check_args(input: Tensor, weight: Tensor, bias: Tensor | None,
                probs: Tensor, dilations: tuple[int, ...], stride: int,
                groups: int) -> None:
    if input.dim() != 4:
        raise ValueError(f'input must be [N, C, H, W], got shape '
                         f'{tuple(input.shape)}')
    if weight.dim() != 4 or weight.shape[-1] != weight.shape[-2] or \
            weight.shape[-1] % 2 == 0:
        raise ValueError('weight must be [C_out, C_in/groups, k, k] with an '
                         f'odd square kernel, got {tuple(weight.shape)}')
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f'stride must be a positive int, got {stride!r}')
    if not isinstance(groups, int) or groups < 1 or \
            input.shape[1] % groups or weight.shape[0] % groups or \
            weight.shape[1] * groups != input.shape[1]:
        raise ValueError(
            f'groups={groups!r} does not fit input channels '
            f'{input.shape[1]} and weight {tuple(weight.shape)}')
    if bias is not None and bias.shape != (weight.shape[0], ):
        raise ValueError(f'bias must be [C_out]=[{weight.shape[0]}], got '
                         f'{tuple(bias.shape)}')
    h_out = (input.shape[2] - 1) // stride + 1
    w_out = (input.shape[3] - 1) // stride + 1
    expected = (input.shape[0], len(dilations), h_out, w_out)
    if tuple(probs.shape) != expected:
        raise ValueError(f'probs must be [N, D, H_out, W_out]={expected} '
                         f'(D = len(dilations) = {len(dilations)}), got '
                         f'{tuple(probs.shape)}')


def select_impl(input: Tensor, weight: Tensor, probs: Tensor,
                dilations: tuple[int, ...], stride: int, groups: int,
                impl: str = 'auto') -> str:
    """Name of the implementation ``pad_conv2d`` would run for these inputs."""
    if impl == 'auto':
        for name in _AUTO_ORDER:
            if _IMPLS[name][1](input, weight, probs, dilations, stride,
                               groups):
                return name
        return 'reference'
    if impl not in _IMPLS:
        raise ValueError(f'impl must be one of {available_impls()}, got '
                         f'{impl!r}')
    if not _IMPLS[impl][1](input, weight, probs, dilations, stride, groups):
        raise ValueError(f'impl={impl!r} does not support these inputs '
                         f'(device={input.device.type}, dtype={input.dtype},'
                         f' stride={stride}, groups={groups}); use '
                         f"impl='auto' or 'reference'")
    return impl


def pad_conv2d(input: Tensor,
               weight: Tensor,
               bias: Tensor | None,
               probs: Tensor,
               dilations: Sequence[int],
               stride: int = 1,
               groups: int = 1,
               impl: str = 'auto') -> Tensor:
    """Pixel-wise adaptive dilated convolution.

    ``sum_d probs[:, d:d+1] * conv2d(input, weight, None, stride,
    padding=d*(k-1)//2, dilation=d, groups) + bias``

    Args:
        input: [N, C_in, H, W].
        weight: [C_out, C_in/groups, k, k], k odd.
        bias: [C_out] or None.
        probs: [N, D, H_out, W_out] with ``H_out = (H - 1) // stride + 1``;
            any non-negative weights (one-hot, soft, straight-through).
        dilations: D distinct positive ints (absolute dilations).
        stride: conv stride (same for both axes).
        groups: conv groups (1, depthwise, or anything conv2d accepts).
        impl: ``'auto'`` or a name from :func:`available_impls`.

    Returns:
        [N, C_out, H_out, W_out].
    """
    dilations = check_dilations(dilations)
    _check_args(input, weight, bias, probs, dilations, stride, groups)
    name = select_impl(input, weight, probs, dilations, stride, groups, impl)
    return _IMPLS[name][0](input, weight, bias, probs, dilations, stride,
                           groups)
