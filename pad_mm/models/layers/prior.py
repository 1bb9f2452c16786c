"""The hidden priors h of a PAD layer: f, its initialisation, the prior.

**f.** Eqs. 3-5 apply a non-linear activation f last. The default for
every aggregation of the paper is :class:`ScaledTanh`,
``f(z) = s0 * exp(rho) * tanh(z)`` with a learnable per-layer scalar rho
(starts at 0) and ``s0 = 2``: bounded, so the recurrence
h^l = f(W h^(l-1) + U x) cannot grow along a chain, zero-centred with
f(0) = 0, and able to become confident. A bounded f without the scale
cannot: by the Gumbel-max trick ``P(argmax(h + g) = argmax h) =
softmax(h)_max`` whatever tau, and tanh's logits differ by less than 2, so
at least 21% of the training samples would be chosen by the noise. The
scale learns the margin the data supports (a margin of 20 needs s > 10).

**Initialisation.** The prior's weights start at zero and its biases at
pre-activations b whose f favours the initial dilation by exactly
``init_margin`` (after f), so a fresh layer in hard eval is the vanilla
conv. The targets are chosen where f' > 0, so every option's input
weights get a gradient from the first step (ReLU at 0 would leave the
other options dead).
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn as nn
import mmcv.cnn  # noqa: F401  (registers mmcv's activations)
from mmengine.logging import print_log
from mmengine.registry import MODELS as ROOT_MODELS
from torch import Tensor

from pad_mm.ops import conv_out_size
from pad_mm.registry import MODELS

from .aggregation import AGGREGATION_TYPES

__all__ = [
    'ScaledTanh', 'PADPrior', 'prior_init_biases', 'act_name',
    'default_act_cfg', 'DEFAULT_ACT_CFG', 'DEFAULT_INIT_MARGIN', 'UNSET',
    'LEGACY_ACT_CFGS', 'note_once', 'activation_class', 'build_act'
]

DEFAULT_INIT_MARGIN = 2.0

#: f of eqs. 3-5 when act_cfg is not given ('static' keeps the identity:
#: its prior is a bare bias, already unbounded)
DEFAULT_ACT_CFG = dict(type='ScaledTanh')

#: the f a checkpoint written before ScaledTanh was trained with, per
#: aggregation (its prior has no ``act.log_scale`` key)
LEGACY_ACT_CFGS: dict[str, dict | None] = {
    'markov': None, 'static': None,
    'recurrent': dict(type='Tanh'), 'gated': dict(type='Tanh')}


# kind -> the missing_keys list of the load_state_dict call that last noted
# it (the same list object is passed to every module of one load, and
# holding it keeps its id from being reused), so a note is one line per load
_NOTED: dict[str, list] = {}


def note_once(load: list, kind: str, msg: str) -> None:
    """Log ``msg`` once per ``load_state_dict`` call (``load``: that call's
    ``missing_keys`` list, the same object for every module) and kind."""
    if _NOTED.get(kind) is load:
        return
    _NOTED[kind] = load
    print_log(msg, logger='current')


class _Unset:

    def __repr__(self) -> str:
        return 'UNSET'


#: "not given": the setting takes its (possibly dependent) default
UNSET: Any = _Unset()


def default_act_cfg(aggregation: str) -> dict | None:
    """The f of eqs. 3-5 used when ``act_cfg`` is not given."""
    if aggregation not in AGGREGATION_TYPES:
        raise ValueError(f'aggregation must be one of '
                         f'{list(AGGREGATION_TYPES)}, got {aggregation!r}')
    return None if aggregation == 'static' else dict(DEFAULT_ACT_CFG)


def act_name(act_cfg: dict | None) -> str:
    """``'identity'``, ``'Tanh'``, ``'ScaledTanh(scale=2.0)'``, ..."""
    if act_cfg is None:
        return 'identity'
    args = ', '.join(f'{k}={v!r}' for k, v in act_cfg.items() if k != 'type')
    return f"{act_cfg['type']}({args})" if args else str(act_cfg['type'])


@MODELS.register_module()
class ScaledTanh(nn.Module):
    """``f(z) = scale * exp(log_scale) * tanh(z)``.

    Args:
        scale: s0, the bound at initialisation (> 0).
        learnable: learn ``log_scale`` (a scalar parameter, starts at 0);
            False keeps the bound at ``scale``.

    Shapes: any -> same.
    """

    def __init__(self, scale: float = 2.0, learnable: bool = True) -> None:
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) \
                or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f'ScaledTanh.scale must be a finite number > '
                             f'0, got {scale!r}')
        if not isinstance(learnable, bool):
            raise TypeError(f'ScaledTanh.learnable must be a bool, got '
                            f'{learnable!r}')
        self.scale = float(scale)
        self.learnable = learnable
        if learnable:
            self.log_scale = nn.Parameter(torch.zeros(()))

    def reset_parameters(self) -> None:
        """rho = 0: the bound is ``scale``."""
        if self.learnable:
            with torch.no_grad():
                self.log_scale.zero_()

    @property
    def bound(self) -> float | None:
        """The current bound s = scale * exp(log_scale) (None on the meta
        device, where there is no value)."""
        if not self.learnable:
            return self.scale
        if self.log_scale.device.type == 'meta':
            return None
        return self.scale * math.exp(float(self.log_scale))

    def forward(self, z: Tensor) -> Tensor:
        if not self.learnable:
            return self.scale * torch.tanh(z)
        s = self.scale * torch.exp(self.log_scale.float())
        return torch.tanh(z) * s.to(z.dtype)

    def extra_repr(self) -> str:
        return f'scale={self.scale:g}, learnable={self.learnable}'


def activation_class(name: str) -> type | None:
    """The activation class registered as ``name``: pad_mm's own (e.g.
    ``ScaledTanh``) or mmcv's / mmengine's root registry, from any scope;
    None if there is none."""
    own = MODELS.module_dict.get(name)
    if own is not None:
        return own
    return ROOT_MODELS.module_dict.get(name) or ROOT_MODELS.get(name)


def build_act(act_cfg: dict | None) -> nn.Module:
    """f as a module: identity for None, else the class of
    :func:`activation_class` (or the class given as ``type``) with the
    config's other keys as arguments, as mmcv's ``build_activation_layer``
    does."""
    if act_cfg is None:
        return nn.Identity()
    typ = act_cfg['type']
    cls = activation_class(typ) if isinstance(typ, str) else typ
    if cls is None:
        raise ValueError(f'act_cfg.type={typ!r} is not a registered '
                         'activation (mmcv: ReLU, GELU, Tanh, ...; pad_mm: '
                         'ScaledTanh)')
    return cls(**{k: v for k, v in act_cfg.items() if k != 'type'})


# ------------------------------------------------------ initial pre-biases
def _act64(act_cfg: dict) -> nn.Module:
    """f as a fresh float64 CPU module (a model built on the meta device
    or a GPU does not matter)."""
    with torch.device('cpu'):
        return build_act(act_cfg).double()


def _value_and_slope(act: nn.Module, x: float) -> tuple[float, float]:
    z = torch.tensor([x], dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        y = act(z)
        (g, ) = torch.autograd.grad(y.sum(), z)
    return float(y.detach()[0]), float(g[0])


def _act_range(f) -> tuple[float, float, float]:
    """(f(0), inf f, sup f), sampled on +-[1e-4, 1e8]; a bound beyond
    1e5 counts as infinite."""
    xs = torch.logspace(-4, 8, 241, dtype=torch.float64,
                        device='cpu').tolist()
    ys = [f(x) for x in xs] + [f(-x) for x in xs]
    lo, hi = min(ys), max(ys)
    return (f(0.0), -math.inf if lo <= -1e5 else lo,
            math.inf if hi >= 1e5 else hi)


def _inverse(f, target: float, start: float, upward: bool) -> float | None:
    """A pre-activation p with f(p) == target (to 1e-9), searched on
    [start, start + X] (upward) or [start - X, start]; None if there is
    none there."""
    x = 1.0
    while (f(start + x) < target if upward else f(start - x) > target) \
            and x < 1e8:
        x *= 2
    a, b = (start, start + x) if upward else (start - x, start)
    for _ in range(200):
        mid = (a + b) / 2
        if f(mid) < target:
            a = mid
        else:
            b = mid
    p = (a + b) / 2
    return p if abs(f(p) - target) <= 1e-9 * max(1.0, abs(target)) else None


def _targets(f, slope, m: float, y0: float, lo: float, hi: float):
    """(other, favoured) pre-activations whose f differ by m, both where
    f' > 0, or None. Tried in order: f(0) and f(0) + m; f(0) -+ m / 2;
    then other = c for c = +-2^k (f flat at 0, e.g. ReLU) and f(c) + m."""
    tries = []
    if y0 + m < hi:
        tries.append((0.0, lambda: _inverse(f, y0 + m, 0.0, True)))
    if y0 - m / 2 > lo and y0 + m / 2 < hi:
        tries.append((lambda: _inverse(f, y0 - m / 2, 0.0, False),
                      lambda: _inverse(f, y0 + m / 2, 0.0, True)))
    for k in range(-3, 5):
        for c in (2.0**k, -2.0**k):
            if f(c) + m < hi:
                tries.append((c, lambda c=c: _inverse(f, f(c) + m, c, True)))
    for other, fav in tries:
        other = other() if callable(other) else other
        fav = fav()
        if other is not None and fav is not None and \
                slope(other) > 0 and slope(fav) > 0:
            return other, fav
    return None


# (f, margin) -> (other, favoured, margin): f is a pure function of its
# config at its initial parameters, and every layer of a model asks again
_TARGETS: dict[tuple[str, float | None], tuple[float, float, float]] = {}


def prior_init_biases(act_cfg: dict | None, init_margin: float | None,
                      num_dilations: int,
                      init_index: int) -> tuple[Tensor, float]:
    """Pre-activation biases b [D] such that f(b) favours ``init_index``
    by exactly ``init_margin`` over every other option (the margin holds
    after f, as eqs. 3-5 apply f last), with f' > 0 at every b.

    ``init_margin=None`` takes 2.0 where f can express it, else 3/4 of the
    widest margin f allows. f is taken at its initial parameters (for
    :class:`ScaledTanh`: the bound ``scale``).

    Returns:
        (b [D] float64, the margin used).

    Raises:
        ValueError: f's range cannot express ``init_margin`` where f' > 0.
    """
    if act_cfg is None:
        m = DEFAULT_INIT_MARGIN if init_margin is None else init_margin
        b = torch.zeros(num_dilations, dtype=torch.float64, device='cpu')
        b[init_index] = m
        return b, m
    key = (repr(sorted(act_cfg.items())), init_margin)
    if key not in _TARGETS:
        _TARGETS[key] = _find_targets(act_cfg, init_margin)
    other, fav, m = _TARGETS[key]
    b = torch.full((num_dilations, ), other, dtype=torch.float64,
                   device='cpu')
    b[init_index] = fav
    return b, m


def _find_targets(act_cfg: dict,
                  init_margin: float | None) -> tuple[float, float, float]:
    act = _act64(act_cfg)

    def f(x: float) -> float:
        with torch.no_grad():
            return float(act(torch.tensor([x], dtype=torch.float64))[0])

    def slope(x: float) -> float:
        return _value_and_slope(act, x)[1]

    y0, lo, hi = _act_range(f)
    widest = max(hi - y0, 2 * min(hi - y0, y0 - lo))
    m = init_margin
    if m is None:
        m = DEFAULT_INIT_MARGIN if DEFAULT_INIT_MARGIN < widest else \
            0.75 * widest
    found = _targets(f, slope, m, y0, lo, hi)
    if found is None:
        raise ValueError(
            f'init_margin={m!r} cannot be expressed after f='
            f'{act_name(act_cfg)} at pre-activations where f has a '
            f'non-zero slope: its range is ({lo:g}, {hi:g}) with '
            f'f(0)={y0:g}, so the initial prior of the native dilation can '
            f'exceed the others by less than {widest:g}; use init_margin < '
            f'{widest:g}, or an act_cfg that can: the default '
            f"dict(type='ScaledTanh'), or None (identity)")
    return found[0], found[1], float(m)


class PADPrior(nn.Module):
    """Hidden-prior generator h^l = f(z) (eqs. 3-5), D channels per pixel;
    z comes from the aggregation (see
    :mod:`pad_mm.models.layers.aggregation`).

    All U/W are 1x1 kernels with D output channels; U acts on the layer's
    input with the conv's stride so h has the conv's output size.
    Parameters are plain tensors (not ``nn.Conv2d`` children) so that
    backbone ``init_cfg`` rules such as ``Kaiming(layer='Conv2d')`` do not
    overwrite the prior initialisation. A learnable f (``ScaledTanh``) is
    the child ``act`` (key ``prior.act.log_scale``).

    Shapes: x [N, C, H, W], h_prev [N, D, H', W'] or None -> [N, D, H_out,
    W_out].
    """

    def __init__(self,
                 in_channels: int,
                 num_dilations: int,
                 stride: int = 1,
                 aggregation: str = 'markov',
                 act_cfg: dict | None = UNSET,
                 init_index: int = 0,
                 init_margin: float | None = None) -> None:
        super().__init__()
        if aggregation not in AGGREGATION_TYPES:
            raise ValueError(f'aggregation must be one of '
                             f'{list(AGGREGATION_TYPES)}, got '
                             f'{aggregation!r}')
        self.aggregation = aggregation
        self.agg = AGGREGATION_TYPES[aggregation]
        self.in_channels = in_channels
        self.num_dilations = D = num_dilations
        self.stride = stride
        self.init_index = init_index
        if act_cfg is UNSET:
            act_cfg = default_act_cfg(aggregation)
        self._set_act(act_cfg)
        # pre-activation biases whose f gives the margin (checks that f
        # can express it)
        self._init_biases, self.init_margin = prior_init_biases(
            act_cfg, init_margin, D, init_index)
        for name, shape in self.agg.param_shapes(in_channels, D).items():
            setattr(self, name, nn.Parameter(torch.empty(shape)))
        self.reset_parameters()

    def _set_act(self, act_cfg: dict | None) -> None:
        self.act_cfg = copy.deepcopy(act_cfg)
        self.act = build_act(act_cfg)

    @property
    def uses_hidden(self) -> bool:
        """Whether h_prev enters the computation (not for Markov)."""
        return self.agg.uses_hidden

    def _params(self) -> dict[str, Tensor]:
        return {n: getattr(self, n) for n in self.agg.param_shapes(
            self.in_channels, self.num_dilations)}

    def reset_parameters(self) -> None:
        """Zero weights (and f's own initialisation: rho = 0 for
        ScaledTanh); the aggregation's bias
        parameters get the pre-activation biases b of
        :func:`prior_init_biases`, so that after f the initial dilation
        leads every other option by exactly ``init_margin`` at every pixel,
        whatever h_prev and the gate are."""
        with torch.no_grad():
            for p in self._params().values():
                p.zero_()
            for name in self.agg.bias_names():
                getattr(self, name).copy_(self._init_biases)
        if hasattr(self.act, 'reset_parameters'):  # f's own init (PReLU:
            self.act.reset_parameters()            # 0.25; ScaledTanh: rho 0)

    def reinit_on_next_load(self) -> None:
        """Re-initialise instead of loading at the next ``load_state_dict``
        (the owning layer found other dilation options in the checkpoint
        and was told to re-initialise its priors)."""
        self.__dict__['_reinit_on_load'] = True

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, *args) -> None:
        if self.__dict__.pop('_reinit_on_load', False):
            self.reset_parameters()
            # f's own parameters (e.g. rho) are loaded after this call, by
            # the child 'act': hand it its re-initialised values instead
            for k, v in self.act.state_dict().items():
                state_dict[f'{prefix}act.{k}'] = v.detach().clone()
            return
        if isinstance(self.act, ScaledTanh) and self.act.learnable and \
                prefix + 'act.log_scale' not in state_dict and any(
                    k.startswith(prefix) for k in state_dict):
            # written before ScaledTanh: trained with the old default f.
            # The child 'act' is loaded after this call, so it can still
            # be replaced (built before an optimizer, as the runner does).
            legacy = LEGACY_ACT_CFGS[self.aggregation]
            self._set_act(legacy)
            note_once(missing_keys, 'legacy_act',
                      f'PAD checkpoint without {prefix}act.log_scale '
                      '(written before f became ScaledTanh): its PAD layers '
                      'keep the f they were trained with, '
                      f'{act_name(legacy)} for {self.aggregation!r} '
                      '(and likewise for the other aggregations: identity '
                      "for 'markov'/'static', Tanh for 'recurrent'/"
                      "'gated')")
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, *args)

    def forward(self, x: Tensor, h_prev: Tensor | None = None) -> Tensor:
        h = self.act(self.agg.pre_activation(self._params(), x, h_prev,
                                             self.stride))
        if not self.agg.per_pixel:
            h = h.expand(x.shape[0], -1, conv_out_size(x.shape[2], 1,
                                                       self.stride),
                         conv_out_size(x.shape[3], 1, self.stride))
        return h

    def extra_repr(self) -> str:
        return (f'{self.in_channels}->{self.num_dilations}, stride='
                f'{self.stride}, aggregation={self.aggregation!r}, f='
                f'{act_name(self.act_cfg)}')
