"""What a PAD model learned, in numbers: the tables of the analysis guide
("What did it learn?"), built only from the JSON files the analysis tools
wrote for one checkpoint and, for the spread between seeds, from a sweep's
``summary.json``.

``tools/analysis_tools/what_it_learned.sh`` runs the tools on the main
job's output and then :func:`learned_summary` / :func:`learned_markdown`
(through ``tools/analysis_tools/learned_summary.py``). The layout of the
folder it reads (every file optional except the statistics)::

    OUT/stats/dilation_stats.json       dilation_stats.py
    OUT/rf/rf.json                      visualize_rf.py (PAD and regular)
    OUT/activation/activation.json      visualize_activation.py

and, for the spread, a sweep's ``summary.json`` wherever it lies.
"""
from __future__ import annotations

import json
import os.path as osp

from .stats import mean_std

__all__ = ['learned_summary', 'learned_markdown', 'seed_spread']


def _load(path: str) -> dict | None:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def seed_spread(sweep: dict, config_name: str) -> dict:
    """Per PAD layer, mean ± std over the seeds of a sweep's finished runs
    of ``config_name``: the share of pixels at each dilation and σ²(d)
    (final validation, as the sweep read them from each run's log), and
    the metric.

    Args:
        sweep: a ``summary.json`` of ``tools/analysis_tools/sweep.py``.
        config_name: the config's name in that sweep.

    Returns:
        ``dict(name, metric, seeds, value=(mean, std, n),
        layers={layer: dict(var=(mean, std, n), shares={d: (mean, std,
        n)})})``.

    Raises:
        ValueError: no finished run of ``config_name`` with PAD statistics.
    """
    runs = sorted((r for r in sweep['runs'] if r.get('name') == config_name
                   and r.get('value') is not None and r.get('pad')),
                  key=lambda r: r['seed'])
    if not runs:
        names = sorted({r.get('name') for r in sweep['runs']})
        raise ValueError(f'config_name={config_name!r}: no finished run '
                         f'with PAD statistics in the sweep (configs: '
                         f'{names})')
    layers = {}
    for name in runs[0]['pad']['layers']:
        per_run = [r['pad']['layers'][name] for r in runs]
        shares = {d: mean_std([p['shares'][d] for p in per_run])
                  for d in per_run[0]['shares']}
        layers[name] = dict(var=mean_std([p['var_dilation']
                                          for p in per_run]),
                            shares=shares)
    return dict(name=config_name, metric=sweep['metric'],
                seeds=[r['seed'] for r in runs],
                value=mean_std([r['value'] for r in runs]), layers=layers)


def learned_summary(out_dir: str, seeds: str | None = None,
                    config_name: str | None = None) -> dict:
    """The numbers of the analysis guide, read from ``out_dir`` (layout in
    the module docstring) and, if given, the sweep summary ``seeds``.

    Returns:
        ``dict(checkpoint, metrics, layers=[dict(name, mean, var, p_max,
        dilations, hist[, agree, agree_const])], all=dict(mean, var,
        p_max), rf=[dict(pixel, PAD, regular)] or None,
        activation=dict(layer, PAD, regular) or None,
        seeds=seed_spread(...) or None, seeds_source=seeds)``: ``hist``
        the shares of pixels
        choosing each of ``dilations``, ``agree`` / ``agree_const`` the
        agreement with the right dilation where the config measured it,
        ``rf`` the positions sampled per model at each pixel,
        ``activation`` the share of channels > 0 at ``layer``. The seed
        spread is of ``config_name`` (default: the statistics' config file
        name) in ``seeds``.

    Raises:
        FileNotFoundError: no ``stats/dilation_stats.json`` in ``out_dir``,
            or no file ``seeds``.
    """
    stats = _load(osp.join(out_dir, 'stats', 'dilation_stats.json'))
    if stats is None:
        raise FileNotFoundError(
            f'out_dir={out_dir!r}: no stats/dilation_stats.json (written by '
            'tools/analysis_tools/dilation_stats.py --out-dir OUT/stats)')
    metrics = stats['metrics']
    layers = []
    for lay in stats['layers']:
        layers.append(dict(name=lay['name'], mean=lay['mean'],
                           var=lay['var'], p_max=lay['p_max'],
                           dilations=lay['dilations'], hist=lay['hist']))
        key = f"pad/{lay['name']}/agree"  # PADChoiceAgreementMetric
        if key in metrics:
            layers[-1].update(agree=metrics[key],
                              agree_const=metrics[key + '_const'])
    result = dict(checkpoint=stats['checkpoint'], metrics=metrics,
                  layers=layers,
                  all=dict(mean=stats['mean_dilation'],
                           var=stats['var_dilation'], p_max=stats['p_max']),
                  rf=None, activation=None, seeds=None, seeds_source=seeds)
    rf = _load(osp.join(out_dir, 'rf', 'rf.json'))
    if rf is not None:
        by_label = {m['label']: m['units'] for m in rf['models']}
        result['rf'] = [
            dict(pixel=pixel, **{label: units[k]['rf_num_positions']
                                 for label, units in by_label.items()})
            for k, pixel in enumerate(rf['pixels'])]
    act = _load(osp.join(out_dir, 'activation', 'activation.json'))
    if act is not None:
        result['activation'] = dict(
            layer=act['layer'],
            **{m['label']: m['active_fraction'] for m in act['models']})
    if seeds is not None:
        sweep = _load(seeds)
        if sweep is None:
            raise FileNotFoundError(f'seeds={seeds!r}: no such file (a '
                                    "sweep's summary.json)")
        name = config_name or osp.splitext(osp.basename(stats['config']))[0]
        result['seeds'] = seed_spread(sweep, name)
    return result


def _pm(ms: tuple, digits: int) -> str:
    mean, std, _ = ms
    return f'{mean:.{digits}f} ± {std:.{digits}f}'


def learned_markdown(summary: dict) -> str:
    """The markdown tables of ``summary`` (:func:`learned_summary`), one
    block per table, separated by blank lines."""
    blocks = []
    dil = summary['layers'][0]['dilations']
    head = ' / '.join(str(d) for d in dil)
    truth = all('agree' in lay for lay in summary['layers'])
    rows = ['| PAD layer | E[d] | σ²(d) | p_max | chosen ' + head + ' |' +
            (' agreement with the right d | constant choice |'
             if truth else ''),
            '|---|---|---|---|---|' + ('---|---|' if truth else '')]
    for lay in summary['layers']:
        rows.append(f"| {lay['name']} | {lay['mean']:.3f} | "
                    f"{lay['var']:.3g} | {lay['p_max']:.3f} | "
                    f"{' / '.join(f'{h:.3f}' for h in lay['hist'])} |" +
                    (f" {lay['agree']:.3f} | {lay['agree_const']:.3f} |"
                     if truth else ''))
    a = summary['all']
    rows.append(f"| all PAD pixels | {a['mean']:.3f} | {a['var']:.3g} | "
                f"{a['p_max']:.3f} | |" + (' | |' if truth else ''))
    blocks.append('\n'.join(rows))
    seeds = summary['seeds']
    if seeds is not None:
        n = len(seeds['seeds'])
        rows = [f'| PAD layer, over {n} seeds | σ²(d) | chosen {head} |',
                '|---|---|---|']
        for name, lay in seeds['layers'].items():
            shares = ' / '.join(_pm(lay['shares'][str(d)], 3) for d in dil)
            rows.append(f"| {name} | {_pm(lay['var'], 3)} | {shares} |")
        rows.append(f"| {seeds['metric']} | {_pm(seeds['value'], 2)} | |")
        blocks.append('\n'.join(rows))
    if summary['rf'] is not None:
        labels = [k for k in summary['rf'][0] if k != 'pixel']
        rows = ['| pixel (x, y) | ' + ' | '.join(
            f'RF positions, {label}' for label in labels) + ' |',
            '|---' * (len(labels) + 1) + '|']
        for unit in summary['rf']:
            x, y = unit['pixel']
            rows.append(f'| ({x}, {y}) | ' + ' | '.join(
                str(unit[label]) for label in labels) + ' |')
        blocks.append('\n'.join(rows))
    if summary['activation'] is not None:
        act = dict(summary['activation'])
        layer = act.pop('layer')
        rows = [f'| model | channels > 0 at {layer} |', '|---|---|']
        rows += [f'| {label} | {frac:.3f} |' for label, frac in act.items()]
        blocks.append('\n'.join(rows))
    return '\n\n'.join(blocks) + '\n'
