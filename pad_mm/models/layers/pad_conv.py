"""``PADConv2d``: a drop-in ``nn.Conv2d`` with pixel-wise adaptive dilation.

Registered as ``'PADConv'`` in mmengine's root ``MODELS`` registry (like
mmcv's ``'DCNv2'`` and ``'SAC'``), so ``mmcv.cnn.build_conv_layer(
dict(type='PADConv', dilations=(1, 2, 4)), ...)`` works from any scope.

State-dict layout of one adaptive layer (D = number of dilation options,
C = input channels). The keys of ``nn.Conv2d`` are unchanged, so a vanilla
checkpoint loads with only the ``prior.*`` keys missing (the two PAD
buffers are never reported missing: an older PAD checkpoint without them
loads with a one-line note)::

    weight                     [C_out, C/groups, k, k]   (as nn.Conv2d)
    bias                       [C_out]                   (if bias=True)
    prior.input_weight         [D, C, 1, 1]   U_h of eqs. 3/4 (all modes)
    prior.input_bias           [D]
    prior.hidden_weight        [D, D, 1, 1]   W_h      ('recurrent', 'gated')
    prior.hidden_bias          [D]                     ('recurrent', 'gated')
    prior.gate_input_weight    [D, C, 1, 1]   U_a of eq. 5       ('gated')
    prior.gate_input_bias      [D]                               ('gated')
    prior.gate_hidden_weight   [D, D, 1, 1]   W_a of eq. 5       ('gated')
    prior.static_bias          [D]            logits b  ('static' only: it
                                              has no other prior key)
    pad_tau                    []             tau in effect (set by PADTauHook)
    pad_dilations              [D] int64      absolute dilation options

A non-adaptive layer (e.g. 1x1) has exactly the keys of ``nn.Conv2d``.
"""
from __future__ import annotations

import copy
import math
import threading
from collections.abc import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import Tensor

from pad_mm.registry import MODELS
from pad_mm.ops import (check_tau, export_tracing, gumbel_softmax,
                        hard_probs, is_tracing, pad_conv2d, pad_conv2d_hard)

from ..pad_cfg import (AGGREGATIONS, DILATION_MODES, EVAL_MODES,
                       TRAIN_MODES, UNSET, default_act_cfg, parse_settings)

__all__ = [
    'PADConv2d', 'PADPrior', 'PADProbe', 'PADChain', 'PADChainError',
    'link_chain', 'pad_layers', 'non_adaptive_reason', 'AGGREGATIONS',
    'TRAIN_MODES', 'EVAL_MODES', 'DILATION_MODES', 'prior_init_biases',
    'PADCheckpointMismatchError', 'PAD_BUFFERS'
]

# persistent buffers of an adaptive PADConv2d (tau, absolute options)
PAD_BUFFERS = ('pad_tau', 'pad_dilations')

_LOGGED_NON_ADAPTIVE: set[str] = set()


class PADChainError(RuntimeError):
    """The layers of an aggregation chain cannot pass h^(l-1) on: they ran
    out of chain order, or see inputs of different batches."""


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


# ---------------------------------------------------------------------------
# The initial priors after f. The settings themselves (act_cfg's
# default per aggregation, init_margin, dilation_mode,
# reinit_priors_on_mismatch) are in the spec, ``pad_mm.models.pad_cfg``.
# ---------------------------------------------------------------------------
DEFAULT_INIT_MARGIN = 2.0


class PADCheckpointMismatchError(ValueError):
    """A checkpoint's PAD dilation options differ from the layer's."""


# kind -> the missing_keys list of the load_state_dict call that last noted
# it (the same list object is passed to every module of one load, and
# holding it keeps its id from being reused), so a note is one line per load
_NOTED: dict[str, list] = {}


def _note_once(load: list, kind: str, msg: str) -> None:
    if _NOTED.get(kind) is load:
        return
    _NOTED[kind] = load
    print_log(msg, logger='current')


def _act_name(act_cfg: dict | None) -> str:
    if act_cfg is None:
        return 'identity'
    args = ', '.join(f'{k}={v!r}' for k, v in act_cfg.items() if k != 'type')
    return f"{act_cfg['type']}({args})" if args else str(act_cfg['type'])


def _f64(act_cfg: dict):
    """f as a float64 CPU function of a float (built afresh, so that a
    model built on the meta device or a GPU does not matter)."""
    with torch.device('cpu'):
        act = build_activation_layer(copy.deepcopy(act_cfg)).double()

    def f(x: float) -> float:
        with torch.no_grad():
            return float(act(torch.tensor([x], dtype=torch.float64,
                                          device='cpu'))[0])
    return f


def _act_range(f) -> tuple[float, float, float]:
    """(f(0), inf f, sup f), sampled on +-[1e-4, 1e8]; a bound beyond
    1e5 counts as infinite."""
    xs = torch.logspace(-4, 8, 241, dtype=torch.float64,
                        device='cpu').tolist()
    ys = [f(x) for x in xs] + [f(-x) for x in xs]
    lo, hi = min(ys), max(ys)
    return (f(0.0), -math.inf if lo <= -1e5 else lo,
            math.inf if hi >= 1e5 else hi)


def _inverse(f, target: float, upward: bool) -> float | None:
    """A pre-activation p with f(p) == target (to 1e-9), searched on
    [0, +X] (upward) or [-X, 0]; None if there is none there."""
    x = 1.0
    while (f(x) < target if upward else f(-x) > target) and x < 1e8:
        x *= 2
    a, b = (0.0, x) if upward else (-x, 0.0)
    for _ in range(200):
        mid = (a + b) / 2
        if f(mid) < target:
            a = mid
        else:
            b = mid
    p = (a + b) / 2
    return p if abs(f(p) - target) <= 1e-9 * max(1.0, abs(target)) else None


def prior_init_biases(act_cfg: dict | None, init_margin: float | None,
                      num_dilations: int,
                      init_index: int) -> tuple[Tensor, float]:
    """Pre-activation biases b [D] such that f(b) favours ``init_index``
    by exactly ``init_margin`` over every other option (the margin holds
    after f, as eqs. 3-5 apply f last).

    Targets: the other options get f(0) (b = 0) and the favoured one
    f(0) + margin; where f's range is too narrow above f(0) (tanh,
    sigmoid) the targets are f(0) -+ margin / 2. ``init_margin=None``
    takes 2.0 where f can express it, else 3/4 of the widest margin f
    allows (tanh: 1.5).

    Returns:
        (b [D] float64, the margin used).

    Raises:
        ValueError: f's range cannot express ``init_margin``.
    """
    if act_cfg is None:
        m = DEFAULT_INIT_MARGIN if init_margin is None else init_margin
        b = torch.zeros(num_dilations, dtype=torch.float64, device='cpu')
        b[init_index] = m
        return b, m
    f = _f64(act_cfg)
    y0, lo, hi = _act_range(f)
    widest = max(hi - y0, 2 * min(hi - y0, y0 - lo))
    m = init_margin
    if m is None:
        m = DEFAULT_INIT_MARGIN if DEFAULT_INIT_MARGIN < widest else \
            0.75 * widest
    other = fav = None
    if y0 + m < hi:
        other, fav = 0.0, _inverse(f, y0 + m, upward=True)
    if fav is None and y0 - m / 2 > lo and y0 + m / 2 < hi:
        other = _inverse(f, y0 - m / 2, upward=False)
        fav = _inverse(f, y0 + m / 2, upward=True)
    if fav is None or other is None:
        raise ValueError(
            f'init_margin={m!r} cannot be expressed after f='
            f'{_act_name(act_cfg)}: its range is ({lo:g}, {hi:g}) with '
            f'f(0)={y0:g}, so the initial prior of the native dilation can '
            f'exceed the others by less than {widest:g}; use init_margin < '
            f'{widest:g}, or an act_cfg with a wider range (e.g. None, '
            "dict(type='ReLU'), dict(type='Tanh') for margins < 2)")
    b = torch.full((num_dilations, ), other, dtype=torch.float64,
                   device='cpu')
    b[init_index] = fav
    return b, float(m)


class PADPrior(nn.Module):
    """Hidden-prior generator h^l (eqs. 3-5), D channels per pixel.

    ``markov``:    h = f(U_h x)
    ``recurrent``: h = f(W_h h_prev + U_h x)
    ``gated``:     a = sigmoid(W_a h_prev + U_a x);
                   h = f(a * (W_h h_prev) + (1 - a) * (U_h x))
    ``static``:    h = f(b), a learned [D] bias broadcast to every pixel
                   (no input term): an ablation control, not in the paper,
                   that mixes the dilations with per-layer probabilities
                   which are the same at every pixel.

    All U/W are 1x1 kernels with D output channels; U acts on the layer's
    input with the conv's stride so h has the conv's output size.
    Parameters are plain tensors (not ``nn.Conv2d`` children) so that
    backbone ``init_cfg`` rules such as ``Kaiming(layer='Conv2d')`` do not
    overwrite the prior initialisation.

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
        if aggregation not in AGGREGATIONS:
            raise ValueError(f'aggregation must be one of '
                             f'{list(AGGREGATIONS)}, got {aggregation!r}')
        self.aggregation = aggregation
        self.in_channels = in_channels
        self.num_dilations = D = num_dilations
        self.stride = stride
        self.init_index = init_index
        if act_cfg is UNSET:
            act_cfg = default_act_cfg(aggregation)
        self.act_cfg = copy.deepcopy(act_cfg)
        self.act = nn.Identity() if act_cfg is None else \
            build_activation_layer(copy.deepcopy(act_cfg))
        # pre-activation biases whose f gives the margin (checks that f
        # can express it)
        self._init_biases, self.init_margin = prior_init_biases(
            act_cfg, init_margin, D, init_index)
        if aggregation == 'static':
            self.static_bias = nn.Parameter(torch.empty(D))
            self.reset_parameters()
            return
        self.input_weight = nn.Parameter(torch.empty(D, in_channels, 1, 1))
        self.input_bias = nn.Parameter(torch.empty(D))
        if aggregation in ('recurrent', 'gated'):
            self.hidden_weight = nn.Parameter(torch.empty(D, D, 1, 1))
            self.hidden_bias = nn.Parameter(torch.empty(D))
        if aggregation == 'gated':
            self.gate_input_weight = nn.Parameter(
                torch.empty(D, in_channels, 1, 1))
            self.gate_input_bias = nn.Parameter(torch.empty(D))
            self.gate_hidden_weight = nn.Parameter(torch.empty(D, D, 1, 1))
        self.reset_parameters()

    @property
    def uses_hidden(self) -> bool:
        """Whether h_prev enters the computation (not for Markov)."""
        return self.aggregation in ('recurrent', 'gated')

    def reset_parameters(self) -> None:
        """Zero weights; pre-activation biases b with f(b) giving logit
        ``f(0) + init_margin`` (or ``f(0) +- init_margin / 2``, see
        :func:`prior_init_biases`) to the initial dilation, so that after
        f it leads every other option by exactly ``init_margin`` and the
        argmax picks it everywhere, whatever h_prev and the gate are."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.zero_()
            if self.aggregation == 'static':
                self.static_bias.copy_(self._init_biases)
                return
            self.input_bias.copy_(self._init_biases)
            if self.aggregation == 'gated':
                # f(a * b_W + (1 - a) * b_U) == f(b) for any gate a
                self.hidden_bias.copy_(self._init_biases)

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        if self.__dict__.pop('_reinit_on_load', False):
            # the owning PADConv2d found other dilation options in the
            # checkpoint and was told to re-initialise (not load) the priors
            self.reset_parameters()
            return
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, x: Tensor, h_prev: Tensor | None = None) -> Tensor:
        if self.aggregation == 'static':
            h_out = (x.shape[2] - 1) // self.stride + 1
            w_out = (x.shape[3] - 1) // self.stride + 1
            # a computed tensor, not the parameter or a view of it, enters
            # f: module hooks (e.g. torch's FlopCounterMode under no_grad)
            # reject inputs that require grad but have no grad_fn
            h = x.new_zeros(1, self.num_dilations, 1, 1) + \
                self.static_bias.to(x.dtype).view(1, -1, 1, 1)
            return self.act(h).expand(x.shape[0], -1, h_out, w_out)
        ux = F.conv2d(x, self.input_weight, self.input_bias, self.stride)
        if self.aggregation == 'markov':
            return self.act(ux)
        if h_prev is None:
            h_prev = ux.new_zeros(ux.shape[0], self.num_dilations,
                                  *ux.shape[2:])
        elif h_prev.shape[-2:] != ux.shape[-2:]:
            h_prev = F.interpolate(
                h_prev, size=ux.shape[-2:], mode='bilinear',
                align_corners=False)
        h_prev = h_prev.to(ux.dtype)
        wh = F.conv2d(h_prev, self.hidden_weight, self.hidden_bias)
        if self.aggregation == 'recurrent':
            return self.act(wh + ux)
        gate = torch.sigmoid(
            F.conv2d(x, self.gate_input_weight, self.gate_input_bias,
                     self.stride) + F.conv2d(h_prev, self.gate_hidden_weight))
        return self.act(gate * wh + (1 - gate) * ux)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}->{self.num_dilations}, stride='
                f'{self.stride}, aggregation={self.aggregation!r}, f='
                f'{_act_name(self.act_cfg)}')


class PADProbe(nn.Module):
    """Identity point where the hidden priors and dilation probabilities of
    a PAD layer pass; register a forward hook on it to record them
    (inputs ``(logits, probs)``, both [N, D, H_out, W_out]). Stateless."""

    def forward(self, logits: Tensor, probs: Tensor) -> Tensor:
        return probs


class PADChain:
    """Carries h^{l-1} between the ordered PAD layers of one chain during
    one forward pass. The first layer always starts from h = 0 and the last
    one clears the state, so nothing leaks between forward passes.

    The state is kept per thread: ``nn.DataParallel`` replicas (which
    share this object and run in one thread each) and threads sharing one
    model for inference each carry their own h^{l-1}.
    """

    def __init__(self, name: str, length: int) -> None:
        self.name = name
        self.length = length
        # thread id -> (h, step)
        self._state: dict[int, tuple[Tensor | None, int]] = {}

    @property
    def _h(self) -> Tensor | None:
        """h^{l-1} of the calling thread's forward pass (None between
        passes)."""
        return self._state.get(threading.get_ident(), (None, -1))[0]

    def read(self, index: int) -> Tensor | None:
        key = threading.get_ident()
        if index == 0:
            if len(self._state) > 1:  # drop what dead threads left behind
                alive = {t.ident for t in threading.enumerate()}
                for k in [k for k in self._state if k not in alive]:
                    self._state.pop(k, None)
            self._state.pop(key, None)
            return None
        h, step = self._state.get(key, (None, -1))
        if step != index - 1:
            raise PADChainError(
                f'PAD chain {self.name!r}: layer {index} ran before layer '
                f'{index - 1} in this forward pass; the layers of a chain '
                'must run in chain order (activation checkpointing that '
                're-runs a chain layer is not supported)')
        return h

    def write(self, index: int, h: Tensor) -> None:
        key = threading.get_ident()
        if index == self.length - 1:
            self._state.pop(key, None)
        else:
            self._state[key] = (h, index)

    def __repr__(self) -> str:
        return f'PADChain(name={self.name!r}, length={self.length})'


@MODELS.register_module('PADConv')
class PADConv2d(nn.Conv2d):
    """3x3 (any odd k) conv whose dilation is chosen per output pixel.

    The dilation at each pixel is sampled from ``dilations`` (multiples of
    this conv's own ``dilation``, or absolute values with
    ``dilation_mode='absolute'``) by Gumbel-Softmax over hidden priors
    produced by :class:`PADPrior`.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
        groups, bias, padding_mode: as ``nn.Conv2d``.
        dilations: dilation options as multiples of ``dilation``; e.g. a
            conv built with ``dilation=2`` and ``dilations=(1, 2, 4)``
            chooses among 2, 4 and 8.
        dilation_mode: ``'relative'`` (default: ``dilations`` are
            multiples of ``dilation``) or ``'absolute'`` (``dilations`` are
            the dilations themselves, e.g. the paper's literal 1, 2, 4).
        tau: Gumbel-Softmax temperature (> 0), annealed by
            ``PADTauHook``. Kept in the state dict (buffer ``pad_tau``),
            so a loaded checkpoint brings its trained tau.
        train_mode: ``'gumbel'`` (soft sample) or ``'gumbel_hard'``
            (straight-through one-hot).
        eval_mode: ``'hard'`` (argmax of the priors), ``'soft'`` (softmax of
            the priors, no noise) or ``'gumbel'`` (noisy sample).
        aggregation: ``'markov'``, ``'recurrent'`` or ``'gated'`` (eqs. 3-5),
            or ``'static'``: an ablation control (not in the paper) whose
            priors are a learned [D] bias, the same at every pixel (no
            input term); its sampling draws one Gumbel sample per image and
            layer, broadcast to all pixels, so the dilation mixture is the
            same at every pixel of an image (``'hard'`` eval: the argmax
            dilation of the bias everywhere).
        act_cfg: activation f of eqs. 3/4 (mmcv activation config), None for
            identity; not given: the aggregation's default (tanh for
            ``'recurrent'`` and ``'gated'``, identity for ``'markov'``).
        init_dilation: the option (a member of ``dilations``, in the same
            mode) that the initial priors favour; None = the conv's native
            dilation (1 in relative mode), so a freshly converted model in
            ``eval_mode='hard'`` equals the vanilla one.
        init_margin: logit margin of ``init_dilation`` at initialisation,
            after f (> 0); None: 2.0, or 3/4 of the widest margin a bounded
            f allows (1.5 for tanh). A margin f cannot express is refused.
        reinit_priors_on_mismatch: when a loaded checkpoint's absolute
            dilation options (buffer ``pad_dilations``) differ from this
            layer's: False (default) refuses with
            :class:`PADCheckpointMismatchError`; True keeps the layer's
            options and re-initialises its priors (and says so).
        impl: PAD implementation, ``'auto'`` or a name of
            ``pad_mm.ops.available_impls()`` (``'reference'`` forces the
            one-conv-per-dilation ground truth). In ``eval_mode='hard'``
            the layer calls ``pad_mm.ops.pad_conv2d_hard`` with the argmax
            index, so a fast implementation computes only the chosen
            dilation per pixel (unless a forward hook on ``probe`` replaced
            the probabilities: then ``pad_conv2d`` mixes the returned ones).

    A conv that cannot be made adaptive (kernel 1x1 or even, non-square
    kernel/stride/dilation, padding other than ``dilation*(k-1)//2``,
    padding_mode other than 'zeros') is built as a plain conv and says so
    once in the log; ``self.adaptive`` tells which.

    Shapes: [N, C_in, H, W] -> [N, C_out, H_out, W_out].
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1,
                 padding: int | tuple[int, int] | str = 0,
                 dilation: int | tuple[int, int] = 1,
                 groups: int = 1,
                 bias: bool = True,
                 padding_mode: str = 'zeros',
                 device=None,
                 dtype=None,
                 *,
                 dilations: Sequence[int] = (1, 2, 4),
                 tau: float = 1.0,
                 train_mode: str = 'gumbel',
                 eval_mode: str = 'hard',
                 aggregation: str = 'markov',
                 act_cfg: dict | None = UNSET,
                 init_dilation: int | None = None,
                 init_margin: float | None = None,
                 impl: str = 'auto',
                 dilation_mode: str = 'relative',
                 reinit_priors_on_mismatch: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, padding_mode,
                         device, dtype)
        settings = parse_settings(dict(
            dilations=dilations, dilation_mode=dilation_mode, tau=tau,
            train_mode=train_mode, eval_mode=eval_mode,
            aggregation=aggregation, act_cfg=act_cfg,
            init_dilation=init_dilation, init_margin=init_margin, impl=impl,
            reinit_priors_on_mismatch=reinit_priors_on_mismatch))
        self.settings = settings
        self.dilations = settings.dilations
        self.dilation_mode = settings.dilation_mode
        self.reinit_priors_on_mismatch = settings.reinit_priors_on_mismatch
        self._tau = settings.tau
        self.train_mode = settings.train_mode
        self.eval_mode = settings.eval_mode
        self.aggregation = settings.aggregation
        self.impl = settings.impl
        self._chain: PADChain | None = None
        self._chain_index = 0

        reason = self.non_adaptive_reason
        self.adaptive = reason is None
        init_dilation = settings.init_dilation
        native = 1 if self.dilation_mode == 'relative' else self.dilation[0]
        if init_dilation is None:
            init_dilation = native
            if init_dilation not in self.dilations and self.adaptive:
                raise ValueError(
                    f'dilations={self.dilations} (absolute) must contain '
                    f'the native dilation {native} of this conv so that '
                    'the fresh layer equals the vanilla conv in hard eval; '
                    'add it, or set init_dilation to one of the options')
        self.init_dilation = init_dilation
        if not self.adaptive:
            if reason not in _LOGGED_NON_ADAPTIVE:
                _LOGGED_NON_ADAPTIVE.add(reason)
                print_log(
                    f'PADConv: {reason}; such convs are built as plain '
                    'convs (this message is shown once per reason)',
                    logger='current')
            return
        self.prior = PADPrior(
            in_channels,
            len(self.dilations),
            stride=self.stride[0],
            aggregation=settings.aggregation,
            act_cfg=settings.act_cfg,
            init_index=self.dilations.index(init_dilation),
            init_margin=settings.init_margin)
        if device is not None or dtype is not None:
            self.prior.to(device=device, dtype=dtype)
        self.probe = PADProbe()
        # persistent: a checkpoint carries the trained tau and the absolute
        # options its priors were trained for
        self.register_buffer(
            'pad_tau', torch.tensor(self._tau, device=device))
        self.register_buffer(
            'pad_dilations',
            torch.tensor(self.abs_dilations, dtype=torch.long,
                         device=device))

    @property
    def tau(self) -> float:
        """Gumbel-Softmax temperature (the ``pad_tau`` buffer's value)."""
        return self._tau

    @tau.setter
    def tau(self, value: float) -> None:
        self._tau = check_tau(value, 'tau')  # as the spec's tau
        if self.adaptive and self.pad_tau.device.type != 'meta':
            with torch.no_grad():
                self.pad_tau.fill_(self._tau)

    @property
    def act_cfg(self) -> dict | None:
        """The f of eqs. 3-4 in effect (None: identity)."""
        return copy.deepcopy(self.prior.act_cfg) if self.adaptive else None

    @property
    def init_margin(self) -> float | None:
        """The initial logit margin after f."""
        return self.prior.init_margin if self.adaptive else None

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        if not self.adaptive:
            return super()._load_from_state_dict(
                state_dict, prefix, local_metadata, strict, missing_keys,
                unexpected_keys, error_msgs)
        name = prefix[:-1] or type(self).__name__
        key_d, key_t = prefix + 'pad_dilations', prefix + 'pad_tau'
        own_d = self.abs_dilations
        has_prior = (prefix + 'prior.input_weight') in state_dict
        ckpt_d = state_dict.get(key_d)
        if ckpt_d is not None:
            ckpt_d = tuple(int(d) for d in ckpt_d.reshape(-1).tolist())
            if ckpt_d != own_d and has_prior:
                if not self.reinit_priors_on_mismatch:
                    raise PADCheckpointMismatchError(
                        f'PAD layer {name!r}: the checkpoint\'s priors were '
                        f'trained for dilation options {ckpt_d}, this '
                        f'layer has {own_d} (absolute); refusing to load '
                        'them with another meaning. Set pad_cfg=dict(..., '
                        'reinit_priors_on_mismatch=True) to keep the conv '
                        'weights and re-initialise these priors, or use '
                        f'dilations that give {ckpt_d}')
                self.prior._reinit_on_load = True
                print_log(f'PAD layer {name!r}: checkpoint dilation options '
                          f'{ckpt_d} differ from the layer\'s {own_d}; '
                          're-initialised its priors '
                          '(reinit_priors_on_mismatch=True)',
                          logger='current')
        # pad_dilations is the layer's own (never overwritten)
        sub = {k: v for k, v in state_dict.items()
               if k.startswith(prefix) and k != key_d}
        super()._load_from_state_dict(sub, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys,
                                      error_msgs)
        for key in (key_d, key_t):
            if key in missing_keys:
                missing_keys.remove(key)
        if key_t in state_dict:
            self._tau = check_tau(float(state_dict[key_t]),
                                  f'{key_t} in the checkpoint')
        elif has_prior:
            _note_once(missing_keys, 'tau',
                       f'PAD checkpoint without tau (written before tau '
                       f'was saved): {name!r} and the other PAD layers keep '
                       f'tau={self._tau:g} from the config')
        if ckpt_d is None and has_prior:
            _note_once(missing_keys, 'dilations',
                       'PAD checkpoint without dilation options (written '
                       f'before they were saved): assuming {name!r} and the '
                       'other PAD layers were trained with their configured '
                       f'options, e.g. {own_d}')

    @property
    def non_adaptive_reason(self) -> str | None:
        """Why this conv is built plain (see :func:`non_adaptive_reason`),
        or None when it is adaptive."""
        return non_adaptive_reason(self.kernel_size, self.stride,
                                   self.padding, self.dilation,
                                   self.padding_mode)

    @property
    def abs_dilations(self) -> tuple[int, ...]:
        """Absolute dilation options: ``dilations`` times ``dilation``
        (relative mode) or ``dilations`` (absolute mode)."""
        if self.dilation_mode == 'absolute':
            return tuple(self.dilations)
        return tuple(m * self.dilation[0] for m in self.dilations)

    @property
    def chain(self) -> PADChain | None:
        return self._chain

    def init_weights(self) -> None:
        """Re-apply the prior initialisation (called by mmengine after a
        parent's ``init_cfg`` ran)."""
        if self.adaptive:
            self.prior.reset_parameters()

    @property
    def mode(self) -> str:
        """The sampling mode in effect now (train_mode or eval_mode)."""
        return self.train_mode if self.training else self.eval_mode

    def sample(self, logits: Tensor) -> Tensor:
        """Dilation probabilities [N, D, H, W] from priors [N, D, H, W].

        ``aggregation='static'``: one sample per image from the (pixel-
        independent) priors of its first pixel, broadcast to all pixels.
        """
        if self.aggregation == 'static':
            return self._sample(logits[:, :, :1, :1]).expand_as(
                logits).contiguous()
        return self._sample(logits)

    def _sample(self, logits: Tensor) -> Tensor:
        mode = self.mode
        if mode == 'hard':
            return hard_probs(logits)
        if mode == 'soft':
            return gumbel_softmax(logits, self.tau, noise=False)
        return gumbel_softmax(
            logits, self.tau, hard=(mode == 'gumbel_hard'), noise=True)

    def forward(self, x: Tensor) -> Tensor:
        if not self.adaptive:
            return super().forward(x)
        uses_chain = self.prior.uses_hidden
        if uses_chain and self._chain is None:
            raise RuntimeError(
                f"PADConv2d(aggregation={self.aggregation!r}) needs h^(l-1) "
                'from the previous layer of its chain but is not linked to '
                "one: place it with PADBackbone(pad_cfg=...) or "
                'pad_mm.models.link_chain([...])')
        h_prev = self._chain.read(self._chain_index) if uses_chain else None
        if h_prev is not None and h_prev.shape[0] != x.shape[0]:
            raise PADChainError(
                f'PAD chain {self._chain.name!r}: layer {self._chain_index} '
                f'sees a batch of {x.shape[0]} but the previous layer of its '
                f'chain saw a batch of {h_prev.shape[0]}; the layers of a '
                'chain must see inputs of one batch')
        logits = self.prior(x, h_prev)
        if uses_chain:
            self._chain.write(self._chain_index, logits)
        sampled = self.sample(logits)
        probs = self.probe(logits, sampled)
        if self.mode == 'hard' and probs is sampled and (
                not is_tracing() or export_tracing()):
            # sparse hard inference: only the argmax dilation per pixel
            # (also in exported graphs, see pad_mm.ops.export_hard)
            return pad_conv2d_hard(x, self.weight, self.bias,
                                   logits.argmax(1), self.abs_dilations,
                                   self.stride[0], self.groups,
                                   impl=self.impl)
        return pad_conv2d(x, self.weight, self.bias, probs,
                          self.abs_dilations, self.stride[0], self.groups,
                          impl=self.impl)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if not self.adaptive:
            return s + ', adaptive=False'
        return (s + f', dilations={self.dilations}, tau={self.tau:g}, '
                f'train_mode={self.train_mode!r}, eval_mode='
                f'{self.eval_mode!r}, aggregation={self.aggregation!r}')


def link_chain(layers: Sequence[PADConv2d], name: str = 'chain') -> PADChain:
    """Link PAD layers, in forward order, into one aggregation chain.

    All layers must be adaptive and share ``aggregation`` and the number of
    dilation options D (h^{l-1} has D channels).
    """
    if len(layers) == 0:
        raise ValueError(f'chain {name!r}: layers must not be empty')
    first = layers[0]
    for i, layer in enumerate(layers):
        if not isinstance(layer, PADConv2d) or not layer.adaptive:
            raise ValueError(f'chain {name!r}: layer {i} ({layer!r}) is not '
                             'an adaptive PADConv2d')
        if layer.aggregation != first.aggregation:
            raise ValueError(
                f'chain {name!r}: all layers need the same aggregation, '
                f'layer 0 has {first.aggregation!r}, layer {i} has '
                f'{layer.aggregation!r}')
        if len(layer.dilations) != len(first.dilations):
            raise ValueError(
                f'chain {name!r}: incompatible layers: layer 0 has '
                f'{len(first.dilations)} dilation options, layer {i} has '
                f'{len(layer.dilations)}; h^(l-1) must have the same D')
    chain = PADChain(name, len(layers))
    for i, layer in enumerate(layers):
        layer._chain = chain
        layer._chain_index = i
    return chain


def pad_layers(model: nn.Module) -> Iterator[tuple[str, PADConv2d]]:
    """``(name, layer)`` of every adaptive :class:`PADConv2d` of ``model``,
    in module order. A model wrapper (DDP, ``DataParallel``, mmengine's
    wrappers) is unwrapped; names are those of the inner model."""
    while is_model_wrapper(model) or isinstance(
            model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    for name, m in model.named_modules():
        if isinstance(m, PADConv2d) and m.adaptive:
            yield name, m
