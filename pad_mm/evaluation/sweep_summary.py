"""The summary of a sweep (configs x seeds): per config mean +- std (n) of
the final metric and of the PAD dilation statistics, paired differences to
baseline configs, and its JSON / CSV / markdown text.

A run is anything with ``name``, ``seed``, ``work_dir``, ``error`` and
``result`` attributes (``result``: None until the run finished, then
a dict with at least ``config``, ``name``, ``seed``, ``value``, ``step``,
``pad`` (:func:`~pad_mm.evaluation.run_logs.pad_stats` or None) and
optionally ``train_wall_s`` and ``resumed``), e.g.
:class:`pad_mm.apis.sweep.Run`.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

from .stats import mean_std, paired_difference

__all__ = ['summarise', 'json_safe', 'summary_csv', 'render_markdown']


def summarise(runs: Sequence, names: list[str], configs: list[str],
              metric: str, baselines: list[str], seeds: list[int]) -> dict:
    """The summary dict of ``runs`` (configs in the order of ``names`` /
    ``configs``; one paired entry per config and baseline)."""
    per_config = []
    by_name = {n: {} for n in names}
    for r in runs:
        if r.result is not None:
            by_name[r.name][r.seed] = r
    for name, config in zip(names, configs):
        done = by_name[name]
        values = {s: done[s].result['value'] for s in sorted(done)}
        mean, std, n = mean_std(list(values.values()))
        entry = dict(name=name, config=config, n=n, mean=mean, std=std,
                     values=values,
                     steps=sorted({done[s].result['step'] for s in done}))
        pads = {s: done[s].result['pad'] for s in sorted(done)
                if done[s].result.get('pad')}
        if pads:
            entry['pad'] = _pad_summary(pads)
        per_config.append(entry)
    paired = []
    for baseline in baselines:
        base = next(e for e in per_config if e['name'] == baseline)
        for e in per_config:
            if e['name'] == baseline:
                continue
            paired.append(dict(name=e['name'], baseline=baseline,
                               **paired_difference(e['values'],
                                                   base['values'])))
    failed = [dict(name=r.name, seed=r.seed, error=r.error) for r in runs
              if r.error]
    return dict(metric=metric,
                baseline=baselines[0] if baselines else None,
                baselines=list(baselines), seeds=seeds,
                runs_total=len(runs),
                runs_finished=sum(r.result is not None for r in runs),
                failed=failed, configs=per_config, paired=paired,
                runs=[dict(r.result, work_dir=r.work_dir)
                      for r in runs if r.result is not None])


def _pad_summary(pads: dict) -> dict:
    """Pooled sigma^2(d) over the seeds (mean, std, n, per seed) and per
    layer the seed means of sigma^2(d) and of each dilation's share."""
    vm, vs, vn = mean_std([p['var_dilation'] for p in pads.values()])
    layers = {}
    for p in pads.values():
        for lname, lay in p['layers'].items():
            acc = layers.setdefault(lname, dict(var=[], shares={}))
            acc['var'].append(lay.get('var_dilation', math.nan))
            for d, f in lay['shares'].items():
                acc['shares'].setdefault(int(d), []).append(f)
    return dict(
        var_dilation=dict(mean=vm, std=vs, n=vn,
                          values={s: p['var_dilation']
                                  for s, p in pads.items()}),
        layers={ln: dict(
            var_dilation=mean_std(a['var'])[0],
            shares={d: mean_std(v)[0] for d, v in sorted(a['shares'].items())})
            for ln, a in layers.items()})


def json_safe(obj):
    """``obj`` with NaN / inf as None and every dict key a string (what
    strict JSON allows)."""
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def summary_csv(summary: dict) -> str:
    """One row per finished run: config, seed, the metric, step, pooled
    sigma^2(d) and mean dilation, train wall time, resumed, config path,
    then ``<layer>/frac_d<d>`` per PAD layer and dilation."""
    metric = summary['metric']
    layer_cols: list[tuple[str, int]] = []
    for run in summary['runs']:
        for lname, lay in ((run.get('pad') or {}).get('layers') or
                           {}).items():
            for d in lay['shares']:
                if (lname, int(d)) not in layer_cols:
                    layer_cols.append((lname, int(d)))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(['config', 'seed', metric, 'step', 'var_dilation',
                'mean_dilation', 'train_wall_s', 'resumed', 'config_path'] +
               [f'{ln}/frac_d{d}' for ln, d in layer_cols])
    for run in summary['runs']:
        pad = run.get('pad') or {}
        row = [run['name'], run['seed'], repr(run['value']), run['step'],
               pad.get('var_dilation', ''), pad.get('mean_dilation', ''),
               run.get('train_wall_s', ''), run.get('resumed', ''),
               run['config']]
        for ln, d in layer_cols:
            row.append((pad.get('layers') or {}).get(ln, {}).get(
                'shares', {}).get(d, ''))
        w.writerow(row)
    return buf.getvalue()


def _fmt(x: float, digits: int = 2) -> str:
    return '—' if x is None or (isinstance(x, float) and math.isnan(x)) \
        else f'{x:.{digits}f}'


def _pm(mean: float, std: float, n: int, digits: int = 2) -> str:
    if n == 0:
        return '—'
    return f'{_fmt(mean, digits)} ± {_fmt(std, digits)} ({n})'


def render_markdown(summary: dict) -> str:
    """The summary as markdown: a table of mean ± std (n) per config with
    the paired Δ to each baseline [95% CI] (n) and σ²(d), the dilation
    shares per PAD layer, and one row per run."""
    metric, bases = summary['metric'], summary['baselines']
    steps = sorted({s for e in summary['configs'] for s in e['steps']})
    lines = [
        f'Final-validation `{metric}` (step {", ".join(map(str, steps))}) '
        f'over seeds {" ".join(map(str, summary["seeds"]))}: '
        f'{summary["runs_finished"]}/{summary["runs_total"]} runs finished.',
        ''
    ]
    paired = {(p['name'], p['baseline']): p for p in summary['paired']}
    any_pad = any('pad' in e for e in summary['configs'])
    head = ['config', f'{metric}: mean ± std (n)']
    for base in bases:
        head.append(f'paired Δ to {base} [95% CI] (n)')
    if any_pad:
        head.append('σ²(d): mean ± std (n)')
    lines += ['| ' + ' | '.join(head) + ' |',
              '|' + '|'.join(['---'] * len(head)) + '|']
    for e in summary['configs']:
        row = [e['name'], _pm(e['mean'], e['std'], e['n'])]
        for base in bases:
            if e['name'] == base:
                row.append('(baseline)')
            else:
                p = paired[e['name'], base]
                row.append('—' if p['n'] == 0 else
                           f'{p["mean"]:+.2f} [{_fmt(p["ci_low"])}, '
                           f'{_fmt(p["ci_high"])}] ({p["n"]})')
        if any_pad:
            v = e.get('pad', {}).get('var_dilation')
            row.append(_pm(v['mean'], v['std'], v['n'], 3) if v else '—')
        lines.append('| ' + ' | '.join(row) + ' |')
    if bases:
        lines += ['', f'Paired Δ: {metric} of the config minus {metric} of '
                  'the baseline with the same seed; 95% CI = mean ± '
                  't(0.975, n-1)·std/√n over the seeds both have.']
    if any_pad:
        lines += _shares_table(summary['configs'])
    lines += ['', 'Runs:', '', f'| config | seed | {metric} | step | '
              'train wall (s) |', '|---|---|---|---|---|']
    for r in summary['runs']:
        lines.append(f'| {r["name"]} | {r["seed"]} | {r["value"]:.4f} | '
                     f'{r["step"]} | {_fmt(r.get("train_wall_s"), 0)}'
                     f'{" (resumed)" if r.get("resumed") else ""} |')
    for f in summary['failed']:
        lines.append(f'| {f["name"]} | {f["seed"]} | failed | | |')
    return '\n'.join(lines) + '\n'


def _shares_table(configs: list[dict]) -> list[str]:
    ds = sorted({int(d) for e in configs
                 for lay in e.get('pad', {}).get('layers', {}).values()
                 for d in lay['shares']})
    lines = ['', 'Share of pixels choosing each dilation per PAD layer '
             '(final validation, hard argmax; mean over seeds):', '',
             '| config | layer | ' + ' | '.join(f'd={d}' for d in ds) +
             ' | σ²(d) |', '|---|---|' + '---|' * (len(ds) + 1)]
    for e in configs:
        for lname, lay in e.get('pad', {}).get('layers', {}).items():
            shares = {int(d): f for d, f in lay['shares'].items()}
            lines.append(
                f'| {e["name"]} | {lname} | ' + ' | '.join(
                    _fmt(shares[d], 3) if d in shares else '—'
                    for d in ds) + f' | {_fmt(lay["var_dilation"], 3)} |')
    return lines
