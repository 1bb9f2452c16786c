"""How a PAD layer's hidden priors aggregate its input and h^(l-1).

The paper's eqs. 3-5 (and one ablation control), one small class each::

    markov:    z = U_h x                                  (eq. 3, W_h = 0)
    recurrent: z = W_h h_prev + U_h x                     (eq. 3)
    gated:     a = sigmoid(W_a h_prev + U_a x)            (eq. 5)
               z = a * (W_h h_prev) + (1 - a) * (U_h x)   (eq. 4)
    static:    z = b, a learned [D] bias, the same at every pixel (an
               ablation control, not in the paper)

and h = f(z) (:class:`~pad_mm.models.layers.prior.PADPrior` applies f).
An aggregation owns the prior parameters it needs (name -> shape, so the
state-dict keys are ``prior.<name>``), their initialisation, the
pre-activation z, whether it reads h^(l-1), and its FLOPs. A new
aggregation is one class here with :func:`register_aggregation`: the
settings spec, the layer, the FLOP counter and the README's argument table
follow from :data:`AGGREGATION_TYPES`.

Shapes: x [N, C, H, W], h_prev [N, D, H', W'] or None -> z [N, D, H_out,
W_out] (``static``: [1, D, 1, 1], broadcast by the caller).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    'Aggregation', 'AGGREGATION_TYPES', 'register_aggregation', 'Markov',
    'Recurrent', 'Gated', 'Static'
]

#: name -> aggregation class, in registration order
AGGREGATION_TYPES: dict[str, type[Aggregation]] = {}


def register_aggregation(cls: type[Aggregation]) -> type[Aggregation]:
    """Class decorator: make ``cls`` available as ``aggregation=cls.name``."""
    if cls.name in AGGREGATION_TYPES:
        raise ValueError(f'aggregation {cls.name!r} is already registered '
                         f'({AGGREGATION_TYPES[cls.name].__name__})')
    AGGREGATION_TYPES[cls.name] = cls
    return cls


Params = Mapping[str, Tensor]


class Aggregation:
    """One way to compute the pre-activation z of the hidden priors.

    Stateless: the parameters live on the prior (``params`` maps the names
    of :meth:`param_shapes` to its tensors).
    """

    name: ClassVar[str]
    #: one line for the settings table
    doc: ClassVar[str]
    #: reads h^(l-1) (needs a chain)
    uses_hidden: ClassVar[bool] = False
    #: False: the priors are the same at every pixel (one Gumbel sample
    #: per image and layer, broadcast to all pixels)
    per_pixel: ClassVar[bool] = True

    @staticmethod
    def param_shapes(in_channels: int, d: int) -> dict[str, tuple[int, ...]]:
        """Parameter name -> shape (state-dict key ``prior.<name>``)."""
        raise NotImplementedError

    @staticmethod
    def bias_names() -> tuple[str, ...]:
        """The parameters that get the initial pre-activation biases b
        (all others start at zero), so that z == b at initialisation
        whatever x, h_prev and the gate are."""
        raise NotImplementedError

    @staticmethod
    def pre_activation(p: Params, x: Tensor, h_prev: Tensor | None,
                       stride: int) -> Tensor:
        """z, before f."""
        raise NotImplementedError

    @staticmethod
    def flops(pixels: int, in_channels: int, d: int) -> int:
        """Multiply-adds x 2 of z for ``pixels`` output pixels."""
        raise NotImplementedError


def hidden_like(h_prev: Tensor | None, ux: Tensor) -> Tensor:
    """h^(l-1) at the size and dtype of ``ux`` [N, D, H, W]: zeros for the
    first layer of a chain, bilinearly resized when the previous layer had
    another output size."""
    if h_prev is None:
        return ux.new_zeros(ux.shape)
    if h_prev.shape[-2:] != ux.shape[-2:]:
        h_prev = F.interpolate(h_prev, size=ux.shape[-2:], mode='bilinear',
                               align_corners=False)
    return h_prev.to(ux.dtype)


@register_aggregation
class Markov(Aggregation):
    name = 'markov'
    doc = 'h = f(U x) (eq. 3 with W_h = 0)'

    @staticmethod
    def param_shapes(in_channels, d):
        return dict(input_weight=(d, in_channels, 1, 1), input_bias=(d, ))

    @staticmethod
    def bias_names():
        return ('input_bias', )

    @staticmethod
    def pre_activation(p, x, h_prev, stride):
        return F.conv2d(x, p['input_weight'], p['input_bias'], stride)

    @staticmethod
    def flops(pixels, in_channels, d):
        return 2 * pixels * d * in_channels


@register_aggregation
class Recurrent(Aggregation):
    name = 'recurrent'
    doc = 'h = f(W h_prev + U x) (eq. 3)'
    uses_hidden = True

    @staticmethod
    def param_shapes(in_channels, d):
        return dict(Markov.param_shapes(in_channels, d),
                    hidden_weight=(d, d, 1, 1), hidden_bias=(d, ))

    @staticmethod
    def bias_names():
        return ('input_bias', )

    @staticmethod
    def pre_activation(p, x, h_prev, stride):
        ux = Markov.pre_activation(p, x, None, stride)
        h = hidden_like(h_prev, ux)
        return F.conv2d(h, p['hidden_weight'], p['hidden_bias']) + ux

    @staticmethod
    def flops(pixels, in_channels, d):
        return Markov.flops(pixels, in_channels, d) + 2 * pixels * d * d


@register_aggregation
class Gated(Aggregation):
    name = 'gated'
    doc = ('h = f(a * (W h_prev) + (1 - a) * (U x)), a = sigmoid(W_a h_prev '
           '+ U_a x) (eqs. 4-5)')
    uses_hidden = True

    @staticmethod
    def param_shapes(in_channels, d):
        return dict(Recurrent.param_shapes(in_channels, d),
                    gate_input_weight=(d, in_channels, 1, 1),
                    gate_input_bias=(d, ), gate_hidden_weight=(d, d, 1, 1))

    @staticmethod
    def bias_names():
        # a * b + (1 - a) * b == b for any gate a
        return ('input_bias', 'hidden_bias')

    @staticmethod
    def pre_activation(p, x, h_prev, stride):
        ux = Markov.pre_activation(p, x, None, stride)
        h = hidden_like(h_prev, ux)
        wh = F.conv2d(h, p['hidden_weight'], p['hidden_bias'])
        gate = torch.sigmoid(
            F.conv2d(x, p['gate_input_weight'], p['gate_input_bias'],
                     stride) + F.conv2d(h, p['gate_hidden_weight']))
        return gate * wh + (1 - gate) * ux

    @staticmethod
    def flops(pixels, in_channels, d):
        return (Recurrent.flops(pixels, in_channels, d)
                + 2 * pixels * d * in_channels + 2 * pixels * d * d)


@register_aggregation
class Static(Aggregation):
    name = 'static'
    doc = ('h = f(b), a learned bias, the same at every pixel (an ablation '
           'control, not in the paper)')
    per_pixel = False

    @staticmethod
    def param_shapes(in_channels, d):
        return dict(static_bias=(d, ))

    @staticmethod
    def bias_names():
        return ('static_bias', )

    @staticmethod
    def pre_activation(p, x, h_prev, stride):
        # a computed tensor, not the parameter or a view of it: module
        # hooks (e.g. torch's FlopCounterMode under no_grad) reject inputs
        # that require grad but have no grad_fn
        b = p['static_bias']
        return x.new_zeros(1, b.numel(), 1, 1) + b.to(x.dtype).view(
            1, -1, 1, 1)

    @staticmethod
    def flops(pixels, in_channels, d):
        return 0
