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
    prior.input_weight         [D, C, 1, 1]   U_h of eqs. 3-4 (all modes)
    prior.input_bias           [D]
    prior.hidden_weight        [D, D, 1, 1]   W_h      ('recurrent', 'gated')
    prior.hidden_bias          [D]                     ('recurrent', 'gated')
    prior.gate_input_weight    [D, C, 1, 1]   U_a of eq. 5       ('gated')
    prior.gate_input_bias      [D]                               ('gated')
    prior.gate_hidden_weight   [D, D, 1, 1]   W_a of eq. 5       ('gated')
    prior.static_bias          [D]            logits b  ('static' only: it
                                              has no other prior key)
    prior.act.log_scale        []             rho of f = s0 exp(rho) tanh
                                              (the default ScaledTanh f; a
                                              checkpoint without it was
                                              trained with the old default
                                              f and keeps it)
    pad_tau                    []             tau in effect (set by PADTauHook)
    pad_dilations              [D] int64      absolute dilation options

A non-adaptive layer (e.g. 1x1) has exactly the keys of ``nn.Conv2d``.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import Tensor

from pad_mm.ops import (available_impls, check_tau, export_tracing,
                        gumbel_softmax, hard_probs, is_tracing, pad_conv2d,
                        pad_conv2d_hard)
from pad_mm.registry import MODELS

from .chain import PADChain, PADChainError
from .geometry import non_adaptive_reason
from .loading import (PAD_BUFFERS, PADCheckpointMismatchError, finish_load,
                      plan_load)
from .prior import PADPrior
from .settings import (EVAL_MODES, TRAIN_MODES, UNSET, Choice, PADSettings,
                       parse_settings)

__all__ = [
    'PADConv2d', 'PADProbe', 'pad_layers', 'non_adaptive_reason',
    'PADCheckpointMismatchError', 'PAD_BUFFERS'
]

_LOGGED_NON_ADAPTIVE: set[str] = set()


class PADProbe(nn.Module):
    """Identity point where the hidden priors and dilation probabilities of
    a PAD layer pass; register a forward hook on it to record them
    (inputs ``(logits, probs)``, both [N, D, H_out, W_out]). Stateless."""

    def forward(self, logits: Tensor, probs: Tensor) -> Tensor:
        return probs


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
        act_cfg: activation f of eqs. 3-5 (mmcv activation config), None for
            identity; not given: the aggregation's default
            (``ScaledTanh``, a tanh with a learnable per-layer bound, for
            the paper's aggregations; identity for ``'static'``).
        init_dilation: the option (a member of ``dilations``, in the same
            mode) that the initial priors favour; None = the conv's native
            dilation (1 in relative mode), so a freshly converted model in
            ``eval_mode='hard'`` equals the vanilla one.
        init_margin: logit margin of ``init_dilation`` at initialisation,
            after f (> 0); None: 2.0, or 3/4 of the widest margin a bounded
            f allows (1.5 for a plain tanh). A margin f cannot express (at
            pre-activations where f' > 0) is refused.
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
        settings: the PAD settings already parsed
            (:func:`~pad_mm.models.layers.settings.parse_settings`), instead
            of the keywords above (which must then keep their defaults).

    ``train_mode``, ``eval_mode`` and ``impl`` may be changed after
    construction; a value that is not allowed raises
    :class:`~pad_mm.models.layers.settings.PADConfigError`.

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
                 reinit_priors_on_mismatch: bool = False,
                 settings: PADSettings | None = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, padding_mode,
                         device, dtype)
        given = dict(
            dilations=dilations, dilation_mode=dilation_mode, tau=tau,
            train_mode=train_mode, eval_mode=eval_mode,
            aggregation=aggregation, act_cfg=act_cfg,
            init_dilation=init_dilation, init_margin=init_margin, impl=impl,
            reinit_priors_on_mismatch=reinit_priors_on_mismatch)
        if settings is None:
            settings = parse_settings(given)
        elif not isinstance(settings, PADSettings):
            raise TypeError(f'settings must be a PADSettings (from '
                            f'parse_settings), got {type(settings).__name__}')
        else:
            defaults = {f.name: f.default
                        for f in dataclasses.fields(PADSettings)}
            changed = sorted(k for k, v in given.items()
                             if v is not defaults[k] and v != defaults[k])
            if changed:
                raise TypeError(f'PADConv2d: pass either settings or the '
                                f'PAD keywords, not both (got {changed})')
        self._built = settings
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

    train_mode = Choice(
        TRAIN_MODES, "Sampling while training: ``'gumbel'`` or "
        "``'gumbel_hard'``.")
    eval_mode = Choice(
        EVAL_MODES, "Sampling in eval: ``'hard'``, ``'soft'`` or "
        "``'gumbel'``.")
    impl = Choice(available_impls,
                  "The PAD implementation (``'auto'`` or a registered name).")

    @property
    def settings(self) -> PADSettings:
        """The settings in effect now (tau and the modes as they are, the
        rest as built)."""
        return dataclasses.replace(
            self._built, tau=self.tau, train_mode=self.train_mode,
            eval_mode=self.eval_mode, impl=self.impl)

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
        plan = plan_load(self, state_dict, prefix)
        super()._load_from_state_dict(plan.state, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
        finish_load(self, plan, missing_keys)

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
        """The aggregation chain this layer belongs to (None: not linked)."""
        return self._chain

    @property
    def chain_index(self) -> int | None:
        """This layer's position in its chain (None: not linked)."""
        return self._chain_index if self._chain is not None else None

    def join_chain(self, chain: PADChain, index: int) -> None:
        """Become layer ``index`` of ``chain`` (see
        :func:`~pad_mm.models.layers.chain.link_chain`)."""
        if not self.adaptive:
            raise ValueError(f'{self!r} is not adaptive: it has no priors '
                             'to pass on')
        self._chain = chain
        self._chain_index = index

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
        if not self.prior.agg.per_pixel:
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
