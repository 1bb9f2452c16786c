"""Metrics against a known right dilation per pixel (PAD-Evidence,
:mod:`pad_mm.datasets.evidence`).

Two questions, two metrics (both read the right-dilation PNG named by each
sample's ``dil_map_path``; the test pipeline's ``PackSegInputs`` must list
it in ``meta_keys``):

* :class:`PADEvidenceMetric` (any model, e.g. the fixed-dilation
  controls): pixel accuracy of the segmentation **per true scale**, keys
  ``evidence/acc`` and ``evidence/acc_d<t>`` for each true dilation t.
* :class:`PADChoiceAgreementMetric` (models with PAD layers; a
  :class:`~pad_mm.evaluation.PADDilationMetric`, so
  ``PADDilationStatsHook`` binds it and it reports the same ``pad/`` keys):
  per PAD layer, the share of map pixels whose chosen dilation (argmax of
  the probabilities the layer used: the hard choice in ``eval_mode='hard'``)
  equals the right one, overall (``pad/<layer>/agree``) and per true
  dilation (``agree_d<t>``), next to what the best constant choice would
  get (``agree_const``, and ``const_d``, the option it is).

The right dilation of a map pixel is that of the input pixel at its centre
(``truth[s // 2 :: s, s // 2 :: s]`` for output stride ``s``). Pixels whose
truth is not among a layer's options count as disagreeing for the layer and
for the constant choice alike.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from PIL import Image

from pad_mm.registry import METRICS

from .dilation_metric import PADDilationMetric
from .recorder import PADRecorder, chosen_dilation

__all__ = [
    'read_dilation_map', 'truth_on_grid', 'scale_accuracy_counts',
    'agreement_counts', 'add_agreement_counts', 'summarize_agreement',
    'PADEvidenceMetric', 'PADChoiceAgreementMetric', 'final_validation',
    'collect_runs', 'evidence_table', 'TABLE_COLUMNS',
    'layer_agreement_table', 'LAYER_COLUMNS'
]


def read_dilation_map(path: str) -> np.ndarray:
    """The right-dilation PNG at ``path`` as an [H, W] int64 array."""
    return np.asarray(Image.open(path), dtype=np.int64)


def truth_on_grid(truth: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The right dilation at the centres of an [h, w] map of ``truth``
    [H, W] (H = s*h, W = s*w for an integer output stride s).

    Raises:
        ValueError: the sizes are not an integer stride apart.
    """
    H, W = truth.shape
    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1 or H % h or W % w or H // h != W // w:
        raise ValueError(f'truth_on_grid: a map of {h}x{w} is not an integer'
                         f' output stride of the {H}x{W} truth (resized '
                         'test images are not supported)')
    s = H // h
    return truth[s // 2::s, s // 2::s]


def scale_accuracy_counts(pred: np.ndarray, label: np.ndarray,
                          truth: np.ndarray) -> dict[int, tuple[int, int]]:
    """``{true dilation: (correct pixels, pixels)}`` of a prediction
    ``pred`` against ``label`` (both [H, W]), split by ``truth`` [H, W]."""
    if not pred.shape == label.shape == truth.shape:
        raise ValueError(f'scale_accuracy_counts: shapes differ: pred '
                         f'{pred.shape}, label {label.shape}, truth '
                         f'{truth.shape}')
    ok = pred == label
    return {int(t): (int(ok[truth == t].sum()), int((truth == t).sum()))
            for t in np.unique(truth)}


def agreement_counts(chosen: np.ndarray, truth: np.ndarray
                     ) -> dict[int, tuple[int, int]]:
    """``{true dilation: (pixels where chosen == truth, pixels)}`` for a
    chosen-dilation map and the right dilation, both [h, w]."""
    if chosen.shape != truth.shape:
        raise ValueError(f'agreement_counts: shapes differ: chosen '
                         f'{chosen.shape}, truth {truth.shape}')
    return {int(t): (int((chosen[truth == t] == t).sum()),
                     int((truth == t).sum()))
            for t in np.unique(truth)}


def add_agreement_counts(acc: dict[int, tuple[int, int]],
                         counts: dict[int, tuple[int, int]]) -> None:
    """Add :func:`agreement_counts` ``counts`` into ``acc`` in place (per
    true dilation, agreeing pixels and pixels summed)."""
    for t, (a, n) in counts.items():
        a0, n0 = acc.get(t, (0, 0))
        acc[t] = (a0 + a, n0 + n)


def summarize_agreement(counts: dict[int, tuple[int, int]],
                        options: Sequence[int]) -> dict[str, float]:
    """``agree`` (overall share), ``agree_d<t>`` per true dilation t,
    ``agree_const`` (share of the best constant choice among ``options``)
    and ``const_d`` (that option) from summed :func:`agreement_counts`."""
    total = sum(n for _, n in counts.values())
    if total == 0:
        return {}
    out = {'agree': sum(a for a, _ in counts.values()) / total}
    for t in sorted(counts):
        a, n = counts[t]
        out[f'agree_d{t}'] = a / n if n else float('nan')
    best = max(options, key=lambda o: counts.get(o, (0, 0))[1])
    out['agree_const'] = counts.get(best, (0, 0))[1] / total
    out['const_d'] = float(best)
    return out


def _sample_arrays(sample: dict) -> tuple[np.ndarray, np.ndarray, str]:
    path = sample.get('dil_map_path')
    if path is None:
        raise KeyError(
            "the data samples have no 'dil_map_path': use a PADEvidenceDataset"
            " and list 'dil_map_path' in PackSegInputs' meta_keys")
    pred = sample['pred_sem_seg']['data'].squeeze(0).cpu().numpy()
    label = sample['gt_sem_seg']['data'].squeeze(0).cpu().numpy()
    return pred, label, path


@METRICS.register_module()
class PADEvidenceMetric(BaseMetric):
    """Pixel accuracy of the segmentation per true scale (see the module
    docstring). Keys: ``acc``, ``acc_d<t>`` (percent), prefix
    ``evidence``."""

    default_prefix = 'evidence'

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred, label, path = _sample_arrays(sample)
            truth = read_dilation_map(path)
            if truth.shape != label.shape:
                raise ValueError(
                    f'PADEvidenceMetric: the right-dilation map {path} is '
                    f'{truth.shape}, the label map {label.shape}')
            self.results.append(scale_accuracy_counts(pred, label, truth))

    def compute_metrics(self, results: list) -> dict[str, float]:
        total: dict[int, tuple[int, int]] = {}
        for counts in results:
            add_agreement_counts(total, counts)
        n = sum(v[1] for v in total.values())
        out = {'acc': 100.0 * sum(v[0] for v in total.values()) / max(n, 1)}
        for t in sorted(total):
            out[f'acc_d{t}'] = 100.0 * total[t][0] / max(total[t][1], 1)
        return out


@METRICS.register_module()
class PADChoiceAgreementMetric(PADDilationMetric):
    """:class:`PADDilationMetric` plus, per PAD layer, the agreement of the
    chosen dilation with the right one (see the module docstring). Put it
    in the evaluator instead of ``PADDilationMetric``, with
    ``PADDilationStatsHook`` in ``custom_hooks``. Keys (prefix ``pad``):
    the dilation statistics, and ``<layer>/agree``, ``<layer>/agree_d<t>``,
    ``<layer>/agree_const``, ``<layer>/const_d`` and the mean over layers
    ``agree`` / ``agree_const``. Test batches must run one forward pass
    (no test-time augmentation or sliding window)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._maps: PADRecorder | None = None
        self._options: dict[str, tuple[int, ...]] = {}

    def bind(self, model: nn.Module) -> None:
        super().bind(model)
        if self._maps is not None:
            self._maps.detach()
        self._maps = PADRecorder(model, keep_maps=True).attach()
        self._options = {n: tuple(m.abs_dilations)
                         for n, m in self._maps.layers}

    def unbind(self) -> None:
        super().unbind()
        if self._maps is not None:
            self._maps.detach()
            self._maps = None

    def process(self, data_batch, data_samples: Sequence) -> None:
        super().process(data_batch, data_samples)
        maps = self._maps
        if maps is None:
            raise RuntimeError('PADChoiceAgreementMetric is not bound: add '
                               "dict(type='PADDilationStatsHook') to "
                               'custom_hooks')
        truths = [read_dilation_map(_sample_arrays(s)[2])
                  for s in data_samples]
        agree: dict[str, dict] = {}
        for name, rec in maps.records.items():
            probs = list(rec.probs)
            rec.probs.clear()
            rec.logits.clear()
            if not probs:
                continue
            if len(probs) != 1 or probs[0].shape[0] != len(truths):
                raise RuntimeError(
                    f'PADChoiceAgreementMetric: layer {name} ran {len(probs)}'
                    f' forward passes of {[p.shape[0] for p in probs]} images'
                    f' for a batch of {len(truths)} samples; test-time '
                    'augmentation and sliding windows are not supported')
            chosen = chosen_dilation(probs[0], self._options[name]).numpy()
            counts: dict[int, tuple[int, int]] = {}
            for c, truth in zip(chosen, truths):
                add_agreement_counts(counts, agreement_counts(
                    c, truth_on_grid(truth, c.shape)))
            agree[name] = counts
        self.results[-1] = dict(stats=self.results[-1], agree=agree)

    def compute_metrics(self, results: list) -> dict[str, float]:
        out = super().compute_metrics([r['stats'] for r in results])
        total: dict[str, dict] = {}
        for r in results:
            for name, counts in r['agree'].items():
                add_agreement_counts(total.setdefault(name, {}), counts)
        layers = []
        for name, counts in total.items():
            s = summarize_agreement(counts, self._options.get(
                name, tuple(sorted(counts))))
            layers.append(s)
            for k, v in s.items():
                out[f'{name}/{k}'] = v
        if layers:
            out['agree'] = float(np.mean([s['agree'] for s in layers]))
            out['agree_const'] = float(np.mean([s['agree_const']
                                                for s in layers]))
        return out


# ----------------------------------------------------- results of many runs
#: columns of :func:`evidence_table` (metric key, header)
TABLE_COLUMNS = (('mIoU', 'mIoU'), ('evidence/acc', 'acc'),
                 ('evidence/acc_d1', 'acc on d=1'),
                 ('evidence/acc_d2', 'acc on d=2'),
                 ('evidence/acc_d4', 'acc on d=4'),
                 ('pad/agree', 'agreement (mean over layers)'),
                 ('pad/agree_const', 'constant choice'),
                 ('pad/p_max', 'p_max'))

#: per-layer columns of :func:`layer_agreement_table`: (key suffix, header)
LAYER_COLUMNS = (('agree', 'agreement'), ('agree_d1', 'on d=1'),
                 ('agree_d2', 'on d=2'), ('agree_d4', 'on d=4'),
                 ('agree_const', 'constant choice'), ('frac_d1', 'chose 1'),
                 ('frac_d2', 'chose 2'), ('frac_d4', 'chose 4'),
                 ('p_max', 'p_max'))


def final_validation(scalars_path: str) -> dict[str, float]:
    """The last validation record (the last line with ``mIoU``) of an
    mmengine ``vis_data/scalars.json``; {} if there is none."""
    import json
    last: dict[str, float] = {}
    with open(scalars_path) as f:
        for line in f:
            line = line.strip()
            if line:
                rec = json.loads(line)
                if 'mIoU' in rec:
                    last = rec
    return last


def collect_runs(work_dir: str) -> dict[str, dict[int, dict[str, float]]]:
    """``{config: {seed: final validation record}}`` of the runs under
    ``work_dir/<config>/seed_<S>/`` (the layout of
    ``tools/analysis_tools/sweep.py``); of several timestamped logs in one
    run folder, the newest with a validation counts."""
    import glob
    import os.path as osp
    import re
    out: dict[str, dict[int, dict[str, float]]] = {}
    for run in sorted(glob.glob(osp.join(work_dir, '*', 'seed_*'))):
        m = re.fullmatch(r'seed_(\d+)', osp.basename(run))
        if not m or not osp.isdir(run):
            continue
        for path in sorted(glob.glob(osp.join(run, '*', 'vis_data',
                                              'scalars.json')),
                           reverse=True):
            rec = final_validation(path)
            if rec:
                out.setdefault(osp.basename(osp.dirname(run)),
                               {})[int(m.group(1))] = rec
                break
    return out


def evidence_table(runs: dict[str, dict[int, dict[str, float]]],
                   columns: Sequence[tuple[str, str]] = TABLE_COLUMNS
                   ) -> str:
    """Markdown table: per config, mean ± std (n) over seeds of each
    column's key (a single run: its value and the seed)."""
    lines = ['| config | ' + ' | '.join(h for _, h in columns) + ' |',
             '|---' * (len(columns) + 1) + '|']
    for config, seeds in runs.items():
        cells = []
        for key, _ in columns:
            vals = [r[key] for r in seeds.values() if key in r]
            if not vals:
                cells.append('—')
                continue
            scale = 100.0 if key.startswith('pad/') else 1.0
            v = np.asarray(vals, dtype=np.float64) * scale
            if len(v) == 1:
                cells.append(f'{v[0]:.1f} (seed {next(iter(seeds))})')
            else:
                cells.append(f'{v.mean():.1f} ± {v.std(ddof=1):.1f} '
                             f'({len(v)})')
        lines.append(f'| {config} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def layer_agreement_table(runs: dict[str, dict[int, dict[str, float]]],
                          columns: Sequence[tuple[str, str]] = LAYER_COLUMNS
                          ) -> str:
    """Markdown table: per PAD config and layer (``pad/<layer>/<key>``
    keys of the final validation), the mean over seeds (n) of each
    column, in percent; configs without PAD layers are left out."""
    lines = ['| config | layer | ' + ' | '.join(h for _, h in columns) +
             ' | seeds |', '|---' * (len(columns) + 3) + '|']
    for config, seeds in runs.items():
        layers = sorted({k[len('pad/'):-len('/agree')]
                         for r in seeds.values() for k in r
                         if k.startswith('pad/') and k.endswith('/agree')
                         and k != 'pad/agree'})
        for layer in layers:
            cells = []
            for key, _ in columns:
                vals = [r[f'pad/{layer}/{key}'] for r in seeds.values()
                        if f'pad/{layer}/{key}' in r]
                cells.append(f'{100 * np.mean(vals):.1f}' if vals else '—')
            n = sum(f'pad/{layer}/agree' in r for r in seeds.values())
            lines.append(f'| {config} | {layer} | ' + ' | '.join(cells) +
                         f' | {n} |')
    return '\n'.join(lines)
