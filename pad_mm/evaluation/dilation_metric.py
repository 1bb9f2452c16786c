"""Validation metric: what dilations the PAD layers chose.

A metric only sees data samples, so the per-layer dilation probabilities
reach it through a :class:`~pad_mm.evaluation.recorder.PADRecorder` (forward
hooks on the stateless ``PADProbe`` of every PAD layer) that
``PADDilationStatsHook`` binds to the metric before each validation / test
and unbinds after it. Each ``process`` call takes the sums recorded during
the batch's forward pass, so sliding-window or test-time-augmented
inference (several forwards per batch) are counted fully, and results
gather across ranks like any metric's.

Config (both keys are needed; the hook adds the metric itself when the
evaluator has none)::

    val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                     dict(type='PADDilationMetric')]
    custom_hooks = [dict(type='PADDilationStatsHook')]

Reported keys (prefix ``pad/``): ``mean_dilation``, ``var_dilation``,
``p_max`` and ``off_argmax`` pooled over all pixels of all PAD layers, and
per layer ``<layer>/`` ``mean_dilation``, ``var_dilation`` (the paper's
sigma^2(d)), ``spatial_var``, ``chosen_mean``, ``p_max`` (mean max
softmax(h): the share of training samples that follow the prior),
``off_argmax`` (share of pixels whose training sample differs from the
hard choice) and ``frac_d<d>`` for each absolute dilation option d
(fraction of pixels that chose it). See :mod:`pad_mm.evaluation.recorder`
for the definitions.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from pad_mm.registry import METRICS

from .recorder import STAT_KEYS, PADRecorder, summarize_dilation_stats

__all__ = ['PADDilationMetric', 'flatten_dilation_stats']


def flatten_dilation_stats(stats: dict[str, dict],
                           per_layer: bool = True) -> dict[str, float]:
    """Metric keys (without prefix) from :func:`summarize_dilation_stats`."""
    out: dict[str, float] = {}
    if 'all' in stats:
        out['mean_dilation'] = stats['all']['mean']
        out['var_dilation'] = stats['all']['var']
        out['p_max'] = stats['all']['p_max']
        out['off_argmax'] = stats['all']['off_argmax']
    if not per_layer:
        return out
    for name, s in stats.items():
        if name == 'all':
            continue
        out[f'{name}/mean_dilation'] = s['mean']
        out[f'{name}/var_dilation'] = s['var']
        out[f'{name}/spatial_var'] = s['spatial_var']
        out[f'{name}/chosen_mean'] = s['chosen_mean']
        out[f'{name}/p_max'] = s['p_max']
        out[f'{name}/off_argmax'] = s['off_argmax']
        for d, f in zip(s['dilations'], s['hist']):
            out[f'{name}/frac_d{d}'] = f
    return out


@METRICS.register_module()
class PADDilationMetric(BaseMetric):
    """Per-layer mean / variance of the sampled dilation and the histogram
    of chosen dilations over a validation or test set.

    Args:
        per_layer: report the per-layer keys besides the pooled
            ``mean_dilation`` / ``var_dilation``.
        collect_device, prefix: as :class:`mmengine.evaluator.BaseMetric`
            (``prefix`` defaults to ``'pad'``).
    """

    default_prefix = 'pad'

    def __init__(self,
                 per_layer: bool = True,
                 collect_device: str = 'cpu',
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not isinstance(per_layer, bool):
            raise TypeError(f'PADDilationMetric.per_layer must be a bool, '
                            f'got {per_layer!r}')
        self.per_layer = per_layer
        self._recorder: PADRecorder | None = None
        self.last_stats: dict[str, dict] = {}

    @property
    def bound(self) -> bool:
        return self._recorder is not None

    def bind(self, model: nn.Module) -> None:
        """Start recording the PAD layers of ``model``."""
        self.unbind()
        self._recorder = PADRecorder(model, keep_maps=False).attach()

    def unbind(self) -> None:
        if self._recorder is not None:
            self._recorder.detach()
            self._recorder = None

    def process(self, data_batch, data_samples: Sequence) -> None:
        if self._recorder is None:
            raise RuntimeError(
                'PADDilationMetric sees no PAD layers: add '
                "dict(type='PADDilationStatsHook') to custom_hooks (it binds "
                'the model to this metric before each validation and test)')
        sums = self._recorder.pop_sums()
        self.results.append({
            name: {k: (list(v) if k == 'dilations' else
                       v.tolist() if isinstance(v, torch.Tensor) else v)
                   for k, v in s.items()}
            for name, s in sums.items()
        })

    def compute_metrics(self, results: list) -> dict[str, float]:
        total: dict[str, dict] = {}
        for batch in results:
            for name, s in batch.items():
                acc = total.setdefault(name, dict(
                    {k: 0.0 for k in STAT_KEYS},
                    hist=torch.zeros(len(s['dilations']),
                                     dtype=torch.float64),
                    dilations=tuple(s['dilations'])))
                for k in STAT_KEYS:
                    acc[k] += s[k]
                acc['hist'] += torch.as_tensor(s['hist'], dtype=torch.float64)
        if not total:
            print_log('PADDilationMetric: no PAD layer ran during this '
                      'evaluation', logger='current')
        self.last_stats = summarize_dilation_stats(total)
        return flatten_dilation_stats(self.last_stats, self.per_layer)
