"""Record what the PAD layers of a model chose, without touching the layers.

Every adaptive :class:`~pad_mm.models.PADConv2d` calls its stateless
``probe(logits, probs)`` once per forward pass. :class:`PADRecorder` puts a
forward hook on each probe and keeps, per layer, either the tensors
(``keep_maps=True``: the tools) or only per-forward sums (the validation
metric), from which :func:`summarize_dilation_stats` computes:

* ``mean``: mean over pixels of the expected dilation
  ``E[d] = sum_k p_k d_k`` with ``p = softmax(h)`` (the hidden priors h);
* ``var``: the paper's sigma^2(d) (Table 1), read as the mean over pixels
  of the variance of the sampled dilation ``Var[d] = sum_k p_k d_k^2 -
  E[d]^2``. By the Gumbel-max trick ``argmax(h + g)`` is distributed as
  ``Categorical(softmax(h))`` whatever tau (tau only decides how one-hot
  the relaxed sample is, not which option wins), so this is the variance
  of the dilation that sampling picks at a pixel;
* ``p_max``: mean over pixels of ``max_k softmax(h)_k``, the share of
  training samples that follow the prior's own choice (whatever tau);
* ``off_argmax``: the share of pixels whose training sample (the argmax of
  the Gumbel sample) differs from the hard-eval choice ``argmax h``:
  counted on the layer's own samples while it samples (training,
  ``eval_mode='gumbel'``), else on one fresh Gumbel-max draw per pixel
  (what training would sample). Its expectation is ``1 - p_max``;
* ``spatial_var``: variance over pixels of ``E[d]`` (how much the dilation
  map varies across the image);
* ``hist``: fraction of pixels whose chosen dilation (argmax of the
  probabilities the layer used) is each option.

Dilations are absolute (``PADConv2d.abs_dilations``).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch import Tensor

from pad_mm.models.layers import pad_layers
from pad_mm.registry import FUNCTIONS

__all__ = [
    'PADRecorder', 'LayerRecord', 'forward_stats',
    'summarize_dilation_stats', 'expected_dilation', 'chosen_dilation',
    'recording', 'STAT_KEYS', 'SAMPLING_MODES'
]

# the layer modes in which the probabilities are a Gumbel sample
SAMPLING_MODES = ('gumbel', 'gumbel_hard')

# sums kept per layer and forward pass
STAT_KEYS = ('count', 'sum_mean', 'sum_mean_sq', 'sum_var', 'sum_pmax',
             'sum_off')


def _dilation_vector(dilations: Sequence[int], like: Tensor) -> Tensor:
    return torch.as_tensor(dilations, dtype=torch.float64,
                           device=like.device).view(1, -1, 1, 1)


def expected_dilation(probs: Tensor, dilations: Sequence[int]) -> Tensor:
    """``sum_k probs[:, k] * dilations[k]``: [N, D, H, W] -> [N, H, W]."""
    return (probs.double() * _dilation_vector(dilations, probs)).sum(1)


def chosen_dilation(probs: Tensor, dilations: Sequence[int]) -> Tensor:
    """The dilation of the largest probability: [N, D, H, W] -> [N, H, W]
    (long)."""
    table = torch.as_tensor(dilations, device=probs.device)
    return table[probs.argmax(1)]


def forward_stats(logits: Tensor, probs: Tensor, dilations: Sequence[int],
                  sampled: bool = False) -> dict[str, Tensor]:
    """Sums over the pixels of one forward pass of one layer.

    Args:
        logits: hidden priors h, [N, D, H, W].
        probs: the dilation probabilities the layer used, [N, D, H, W].
        dilations: the D absolute dilation options.
        sampled: ``probs`` is a Gumbel sample (the layer was training or
            in ``eval_mode='gumbel'``); otherwise ``sum_off`` counts one
            fresh Gumbel-max draw per pixel.

    Returns:
        float64 scalars ``count`` (N*H*W), ``sum_mean`` (sum of E[d]),
        ``sum_mean_sq`` (sum of E[d]^2), ``sum_var`` (sum of Var[d]),
        ``sum_pmax`` (sum of max softmax(h)), ``sum_off`` (pixels whose
        training sample is not argmax h) and ``hist`` [D] (pixels whose
        argmax of ``probs`` is each option).
    """
    with torch.no_grad():
        h = logits.detach()
        choice = h.argmax(1)
        if sampled:
            sample = probs.detach().argmax(1)
        else:  # Gumbel-max: the argmax a training sample would take
            u = torch.rand(h.shape, dtype=torch.float64, device=h.device)
            g = -torch.log(-torch.log(u.clamp(1e-20, 1 - 1e-12)))
            sample = (h.double() + g).argmax(1)
        p = torch.softmax(h.double(), dim=1)
        d = _dilation_vector(dilations, p)
        mean = (p * d).sum(1)
        var = (p * d * d).sum(1) - mean * mean
        hist = torch.bincount(
            probs.detach().argmax(1).flatten(),
            minlength=len(dilations)).double()
        return dict(
            count=torch.tensor(float(mean.numel()), dtype=torch.float64),
            sum_mean=mean.sum(),
            sum_mean_sq=(mean * mean).sum(),
            sum_var=var.clamp_min(0).sum(),
            sum_pmax=p.amax(1).sum(),
            sum_off=(sample != choice).sum().double(),
            hist=hist)


@FUNCTIONS.register_module('pad_summarize_dilation_stats')
def summarize_dilation_stats(
        sums: dict[str, dict[str, Tensor]]) -> dict[str, dict]:
    """Per-layer statistics from accumulated :func:`forward_stats` sums.

    Returns ``{layer: dict(mean, var, spatial_var, chosen_mean, p_max,
    off_argmax, hist, count)}`` (floats; ``hist`` a list of fractions per
    option) plus the pooled ``'all'`` entry over all pixels of all layers
    (``mean``, ``var``, ``p_max``, ``off_argmax``, ``count``).
    """
    out: dict[str, dict] = {}
    total = {k: 0.0 for k in STAT_KEYS}
    for name, s in sums.items():
        n = float(s['count'])
        if n == 0:
            continue
        mean = float(s['sum_mean']) / n
        hist = (s['hist'] / s['hist'].sum()).tolist()
        out[name] = dict(
            mean=mean,
            var=float(s['sum_var']) / n,
            spatial_var=max(float(s['sum_mean_sq']) / n - mean * mean, 0.0),
            chosen_mean=float(sum(f * d for f, d in zip(
                hist, s['dilations']))),
            p_max=float(s['sum_pmax']) / n,
            off_argmax=float(s['sum_off']) / n,
            hist=hist,
            dilations=list(s['dilations']),
            count=int(n))
        for k in STAT_KEYS:
            total[k] += float(s[k])
    if total['count'] > 0:
        n = total['count']
        out['all'] = dict(mean=total['sum_mean'] / n,
                          var=total['sum_var'] / n,
                          p_max=total['sum_pmax'] / n,
                          off_argmax=total['sum_off'] / n, count=int(n))
    return out


@dataclass
class LayerRecord:
    """What one PAD layer produced in the recorded forward passes."""
    name: str
    dilations: tuple[int, ...]
    logits: list[Tensor] = field(default_factory=list)
    probs: list[Tensor] = field(default_factory=list)


@FUNCTIONS.register_module('pad_recorder')
class PADRecorder:
    """Forward hooks on the ``probe`` of every adaptive PAD layer.

    Args:
        model: the model (a wrapper is unwrapped).
        keep_maps: keep the hidden priors and probabilities of every
            forward (detached, on the CPU) in ``records[name].logits`` /
            ``.probs`` ([N, D, H, W] each); otherwise only statistics sums
            are kept.

    Use as a context manager or call :meth:`attach` / :meth:`detach`.
    ``pop_sums()`` returns and clears the sums gathered since the last
    call. Raises ``ValueError`` if the model has no adaptive PAD layer.
    """

    def __init__(self, model: nn.Module, keep_maps: bool = False) -> None:
        self.layers = list(pad_layers(model))
        if not self.layers:
            raise ValueError(
                f'{type(model).__name__} has no adaptive PAD layer '
                '(PADConv2d); place some with PADBackbone(pad_cfg=...) or '
                'pad_mm.models.convert_to_pad')
        self.keep_maps = keep_maps
        self.records = {n: LayerRecord(n, m.abs_dilations)
                        for n, m in self.layers}
        self.order: list[str] = []  # layer names in call order
        self._sums: dict[str, dict] = {}
        self._handles: list = []

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.layers]

    def attach(self) -> 'PADRecorder':
        if not self._handles:
            for name, layer in self.layers:
                self._handles.append(layer.probe.register_forward_hook(
                    self._make_hook(name, layer)))
        return self

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> 'PADRecorder':
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()

    def _make_hook(self, name: str, layer):
        dilations = layer.abs_dilations

        def hook(module, inputs, output):
            logits, probs = inputs
            if name not in self.order:
                self.order.append(name)
            s = forward_stats(logits, probs, dilations,
                              sampled=layer.mode in SAMPLING_MODES)
            acc = self._sums.get(name)
            if acc is None:
                self._sums[name] = dict(s, dilations=dilations)
            else:
                for k, v in s.items():
                    acc[k] = acc[k] + v
            if self.keep_maps:
                rec = self.records[name]
                rec.logits.append(logits.detach().float().cpu())
                rec.probs.append(probs.detach().float().cpu())

        return hook

    def pop_sums(self) -> dict[str, dict]:
        """Sums per layer since the last call (see :func:`forward_stats`;
        plus ``dilations``), then cleared."""
        sums, self._sums = self._sums, {}
        return sums

    def clear(self) -> None:
        self._sums = {}
        self.order = []
        for rec in self.records.values():
            rec.logits.clear()
            rec.probs.clear()

    def maps(self, index: int = -1) -> dict[str, tuple[Tensor, Tensor]]:
        """``{layer: (logits, probs)}`` of one recorded forward pass (the
        last by default), layers in call order; needs ``keep_maps``."""
        if not self.keep_maps:
            raise RuntimeError('PADRecorder(keep_maps=False) keeps no maps')
        return {n: (self.records[n].logits[index],
                    self.records[n].probs[index]) for n in self.order
                if self.records[n].probs}


@contextmanager
def recording(model: nn.Module,
              keep_maps: bool = True) -> Iterator[PADRecorder]:
    """``with recording(model) as rec: model(...)``."""
    rec = PADRecorder(model, keep_maps=keep_maps)
    with rec:
        yield rec
