"""The implementation contract of the PAD convolution, stated once.

Every implementation (:mod:`pad_mm.ops.impls`) is a function of the
:class:`PADImpl` protocol and declares it with :func:`implements`, which
checks its signature when the module is imported. The built-in ones are
made by :func:`implementation` from a body that receives the conv geometry
as one :class:`Geometry`, so that the contract's call is written here only.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = [
    'PADImpl', 'implements', 'CONTRACT_PARAMS', 'first_order_only',
    'Geometry', 'implementation'
]

#: the positional parameters of the contract (the fourth is ``probs`` for
#: the soft op, ``index`` for the hard one)
CONTRACT_PARAMS = ('input', 'weight', 'bias', ('probs', 'index'),
                   'dilations', 'stride', 'groups')


@runtime_checkable
class PADImpl(Protocol):
    """A PAD implementation: ``fn(input, weight, bias, sel, dilations,
    stride=1, groups=1) -> Tensor``.

    Args:
        input: [N, C_in, H, W] (NCHW or channels_last).
        weight: [C_out, C_in/groups, k, k], k odd.
        bias: [C_out] or None.
        sel: the soft op's ``probs`` [N, D, H_out, W_out] (any non-negative
            weights: soft, one-hot, straight-through), or the hard op's
            ``index`` [N, H_out, W_out] (integer positions in
            ``dilations``), with ``H_out = (H - 1) // stride + 1``
            (:func:`pad_mm.ops.conv_out_size`).
        dilations: D distinct positive ints (absolute dilations), a tuple.
        stride: conv stride (both axes).
        groups: conv groups.

    Returns:
        [N, C_out, H_out, W_out]: soft
        ``sum_d probs[:, d:d+1] * conv2d(input, weight, None, stride,
        d*(k-1)//2, d, groups) + bias``; hard the same with the one-hot
        ``probs`` of ``index``. Differentiable in input, weight, bias (and
        probs), in the dtype of ``input`` unless the implementation says
        otherwise.

    Arguments arrive checked (:func:`pad_mm.ops.pad_conv2d` checks them);
    an implementation checks nothing and must not change its inputs.
    """

    def __call__(self,
                 input: Tensor,
                 weight: Tensor,
                 bias: Tensor | None,
                 sel: Tensor,
                 dilations: Sequence[int],
                 stride: int = 1,
                 groups: int = 1) -> Tensor:
        ...


F = TypeVar('F')


def implements(fn: F) -> F:
    """Declare ``fn`` a :class:`PADImpl`: its first seven parameters must
    be the contract's (:data:`CONTRACT_PARAMS`, ``stride`` and ``groups``
    defaulting to 1); further parameters must have defaults. Raises
    TypeError at import otherwise."""
    params = list(inspect.signature(fn).parameters.values())
    names = [p.name for p in params[:len(CONTRACT_PARAMS)]]
    ok = len(params) >= len(CONTRACT_PARAMS) and all(
        n in (want if isinstance(want, tuple) else (want, ))
        for n, want in zip(names, CONTRACT_PARAMS))
    ok = ok and params[5].default == 1 and params[6].default == 1
    ok = ok and all(p.default is not inspect.Parameter.empty
                    for p in params[len(CONTRACT_PARAMS):])
    if not ok:
        raise TypeError(f'{fn.__qualname__} does not follow the PADImpl '
                        f'contract {CONTRACT_PARAMS}: {names}')
    return fn


class Geometry(NamedTuple):
    """The conv geometry of one PAD call, as :func:`implementation` hands
    it to a body: the contract's ``dilations`` (a tuple of D distinct
    positive ints), ``stride`` and ``groups``."""
    dilations: tuple[int, ...]
    stride: int
    groups: int


def implementation(body: Callable[..., Tensor]) -> PADImpl:
    """The :class:`PADImpl` that computes ``body(input, weight, bias, sel,
    geometry, **options)``.

    ``body`` names its fourth parameter ``probs`` (a soft implementation)
    or ``index`` (a hard one) and takes the geometry as its fifth, a
    :class:`Geometry`; any further parameters are keyword options with
    defaults. The returned function takes the contract's arguments
    ``(input, weight, bias, sel, dilations, stride=1, groups=1)`` (the
    first four positionally) plus ``body``'s options, has ``body``'s name
    and docstring, and passes :func:`implements`.
    """
    params = list(inspect.signature(body).parameters.values())
    contract = list(inspect.signature(PADImpl.__call__).parameters.values())
    contract = [p.replace(kind=inspect.Parameter.POSITIONAL_ONLY)
                if i < 4 else p for i, p in enumerate(contract[1:])]
    contract[3] = contract[3].replace(name=params[3].name)

    def impl(input, weight, bias, sel, /, dilations, stride=1, groups=1,
             **options):
        geometry = Geometry(tuple(dilations), stride, groups)
        return body(input, weight, bias, sel, geometry, **options)

    for attr in ('__module__', '__name__', '__qualname__', '__doc__'):
        setattr(impl, attr, getattr(body, attr))
    impl.__signature__ = inspect.Signature(
        contract + params[5:], return_annotation=Tensor)
    return implements(impl)


def first_order_only(backward: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate an ``autograd.Function.backward`` whose gradients are not
    themselves differentiable (kernels, ``out=`` ops): a backward with
    ``create_graph=True`` raises instead of returning gradients without
    (or with a silently partial) graph. ``@once_differentiable`` alone
    only errs if the engine later runs its error node, which
    ``torch.autograd.grad(..., inputs)`` prunes when the node leads to none
    of the ``inputs``; the double backward then came out wrong."""
    inner = once_differentiable(backward)

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        if torch.is_grad_enabled():  # the engine runs create_graph=True so
            raise RuntimeError(
                'double backward (create_graph=True) through this PAD '
                f'implementation ({backward.__qualname__}) is not '
                "supported; use impl='reference' for higher-order "
                'gradients')
        return inner(ctx, *grads)

    return wrapper
