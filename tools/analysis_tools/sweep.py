"""Train configs x seeds and summarise them: mean +- std per config and
paired differences to a baseline, with 95% confidence intervals.

    python tools/analysis_tools/sweep.py CONFIG [CONFIG ...] \
        --seeds 0 1 2 --work-dir DIR [--baseline CONFIG [CONFIG ...]] \
        [--cfg-options key=value ...] [--metric mIoU] \
        [--jobs N] [--threads T]

* Every config x seed is one ``tools/train.py`` process (the normal
  training entry point) with ``--cfg-options randomness.seed=S`` (after the
  sweep's own ``--cfg-options``) and the work dir ``DIR/<config>/seed_<S>``;
  its output goes to ``train_stdout.log`` there. Runs go seed by seed (all
  configs of seed 0 first), so partial results stay balanced.
* Resumable: a run that finished has ``sweep_result.json`` in its work dir
  and is skipped; a run with a checkpoint but no result (interrupted) is
  restarted with ``--resume`` (from its last checkpoint). Adding seeds or
  configs to a finished sweep trains only the new runs. A work dir made
  with other ``--cfg-options`` is refused.
* The final metric of a run is read from its own logs: mmengine's scalar
  log ``*/vis_data/scalars.json`` (the validation record of the last
  step), else the last validation line of the text log. For PAD models
  the sweep adds ``PADDilationStatsHook`` (through a two-line wrapper
  config ``sweep_config.py`` in the run's work dir that inherits the
  config), so the same validation also logs the dilation statistics of
  ``PADDilationMetric`` (the numbers of ``dilation_stats.py``): sigma^2(d)
  pooled over all PAD layers (``pad/var_dilation``) and, per layer,
  sigma^2(d) and the share of pixels that chose each dilation.
* After every finished run it rewrites DIR/summary.json (everything),
  DIR/summary.csv (one row per finished run), DIR/summary.md (mean +- std
  (n) per config, paired difference to each ``--baseline`` config with
  a 95% t interval, dilation shares) and DIR/summary.png (the metric per
  config: mean +- std, each seed a dot).
* ``--jobs N`` runs N trainings at once; ``--threads T`` sets
  OMP_NUM_THREADS / MKL_NUM_THREADS (torch's intra-op threads) of each.

Works for mmseg and mmpretrain configs (default metric ``mIoU`` resp.
``accuracy/top1``, from the config's ``default_scope``).
"""
from __future__ import annotations

import argparse
import csv
import heapq
import json
import math
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TRAIN = osp.join(REPO, 'tools', 'train.py')
RESULT_FILE = 'sweep_result.json'
SETTINGS_FILE = 'sweep.json'
STDOUT_FILE = 'train_stdout.log'
WRAPPER_FILE = 'sweep_config.py'
DEFAULT_METRICS = {'mmseg': 'mIoU', 'mmpretrain': 'accuracy/top1'}
STATS_HOOK = 'PADDilationStatsHook'


# ---------------------------------------------------------------------------
# statistics
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified
    Lentz), converges for x < (a + 1) / (a + b + 2)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            return h
    raise ArithmeticError(f'betainc({a}, {b}, {x}) did not converge')


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b), 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f'x must be in [0, 1], got {x!r}')
    if x in (0.0, 1.0):
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) +
                 a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """CDF of Student's t distribution with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f'df must be > 0, got {df!r}')
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile_fallback(p: float, df: float) -> float:
    """Quantile of Student's t (no scipy): bisection on :func:`t_cdf`,
    accurate to ~1e-10."""
    if not 0.0 < p < 1.0:
        raise ValueError(f'p must be in (0, 1), got {p!r}')
    if df <= 0:
        raise ValueError(f'df must be > 0, got {df!r}')
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile_fallback(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t: scipy's when installed, else
    :func:`t_quantile_fallback`."""
    try:
        from scipy.stats import t as student_t
    except ImportError:
        return t_quantile_fallback(p, df)
    return float(student_t.ppf(p, df))


def mean_std(values: list[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; NaN for n < 2) and n."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, n
    var = sum((v - mean)**2 for v in values) / (n - 1)
    return mean, math.sqrt(var), n


def paired_difference(values: dict[int, float], baseline: dict[int, float],
                      level: float = 0.95) -> dict:
    """``values - baseline`` paired by seed: mean, std, n and the ``level``
    confidence interval ``mean +- t_{(1+level)/2, n-1} * std / sqrt(n)``
    (NaN bounds for n < 2)."""
    seeds = sorted(set(values) & set(baseline))
    diffs = [values[s] - baseline[s] for s in seeds]
    mean, std, n = mean_std(diffs)
    out = dict(seeds=seeds, diffs=diffs, n=n, mean=mean, std=std,
               level=level, t=math.nan, ci_low=math.nan, ci_high=math.nan)
    if n >= 2:
        t = t_quantile(0.5 + level / 2.0, n - 1)
        half = t * std / math.sqrt(n)
        out.update(t=t, ci_low=mean - half, ci_high=mean + half)
    return out


# ---------------------------------------------------------------------------
# configs and runs
@dataclass
class Run:
    config: str          # path as given
    name: str            # short config name (summary rows)
    seed: int
    work_dir: str
    is_pad: bool
    wrapper: str | None  # config file trained (None: the config itself)
    result: dict | None = None
    error: str | None = None
    started: float = 0.0
    proc: subprocess.Popen | None = field(default=None, repr=False)
    stdout: object = field(default=None, repr=False)
    resumed: bool = False
    cmd: list[str] = field(default_factory=list)
    start_frac: float = 0.0  # training done before this start (resumed)

    @property
    def result_file(self) -> str:
        return osp.join(self.work_dir, RESULT_FILE)

    @property
    def label(self) -> str:
        return f'{self.name} seed {self.seed}'


def config_names(configs: list[str]) -> list[str]:
    """Short unique names: the file stem, with parent folders added while
    two configs share it."""
    parts = [osp.normpath(osp.abspath(c)).split(os.sep) for c in configs]
    depth = 1
    while True:
        names = ['_'.join(p[-depth:-1] + [osp.splitext(p[-1])[0]])
                 for p in parts]
        if len(set(names)) == len(names) or depth >= max(map(len, parts)):
            return names
        depth += 1


def _has_pad(node) -> bool:
    if isinstance(node, dict):
        t = node.get('type')
        if 'pad_cfg' in node or (isinstance(t, str) and t.startswith('PAD')):
            return True
        return any(_has_pad(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return any(_has_pad(v) for v in node)
    return False


def inspect_config(path: str, options: dict) -> dict:
    """Task, PAD-ness and custom hooks of a config (+ options), without
    importing its custom modules."""
    from mmengine.config import Config
    cfg = Config.fromfile(path, import_custom_modules=False)
    if options:
        cfg.merge_from_dict(options)
    scope = cfg.get('default_scope')
    if scope not in DEFAULT_METRICS:
        raise ValueError(f'config {path!r}: default_scope={scope!r}; the '
                         f'sweep supports {sorted(DEFAULT_METRICS)}')
    hooks = cfg.to_dict().get('custom_hooks') or []
    return dict(scope=scope, is_pad=_has_pad(cfg.to_dict().get('model')),
                custom_hooks=list(hooks))


def write_wrapper(config: str, hooks: list, work_dir: str) -> str | None:
    """Config file of a PAD run: the config plus ``PADDilationStatsHook``
    (None when the config has it already)."""
    if any(isinstance(h, dict) and h.get('type') == STATS_HOOK
           for h in hooks):
        return None
    hooks = list(hooks) + [dict(type=STATS_HOOK, histogram=False)]
    path = osp.join(work_dir, WRAPPER_FILE)
    text = ('# written by tools/analysis_tools/sweep.py: the config plus '
            'the dilation\n# statistics of every validation\n'
            f'_base_ = [{osp.abspath(config)!r}]\n'
            f'custom_hooks = {hooks!r}\n')
    os.makedirs(work_dir, exist_ok=True)
    if not osp.isfile(path) or open(path).read() != text:
        with open(path, 'w') as f:
            f.write(text)
    return path


# ---------------------------------------------------------------------------
# reading a run's logs
_VAL_LINE = re.compile(r'(?:Iter|Epoch)\(val\)\s*\[[^\]]*\]\s*(.*)$')
_PAIR = re.compile(r'(\S+):\s+(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan)')


def _timestamp_dirs(work_dir: str) -> list[str]:
    if not osp.isdir(work_dir):
        return []
    return sorted(d for d in (osp.join(work_dir, n)
                              for n in os.listdir(work_dir))
                  if osp.isdir(d) and re.fullmatch(r'\d{8}_\d{6}',
                                                   osp.basename(d)))


def read_final_metrics(work_dir: str, metric: str) -> dict:
    """The last validation record holding ``metric`` in the run's logs.

    Reads every ``<timestamp>/vis_data/scalars.json`` of the work dir (a
    resumed run has several; later ones win) and takes the record with the
    largest ``step``; without a scalar log, the last ``Iter(val)`` /
    ``Epoch(val)`` line of the ``<timestamp>/<timestamp>.log`` text logs.

    Returns ``dict(value, step, record, source)``.
    """
    best = None
    for stamp in _timestamp_dirs(work_dir):
        path = osp.join(stamp, 'vis_data', 'scalars.json')
        if not osp.isfile(path):
            continue
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                if metric in rec and (best is None or
                                      rec.get('step', 0) >= best[0]):
                    best = (rec.get('step', 0), rec, path)
    if best is None:
        for stamp in _timestamp_dirs(work_dir):
            log = osp.join(stamp, osp.basename(stamp) + '.log')
            if not osp.isfile(log):
                continue
            with open(log) as f:
                for line in f:
                    m = _VAL_LINE.search(line)
                    if not m:
                        continue
                    rec = {k: float(v) for k, v in _PAIR.findall(m.group(1))}
                    if metric in rec:
                        best = (-1, rec, log)
    if best is None:
        raise ValueError(
            f'{work_dir}: no validation record with metric {metric!r} in '
            'its logs (*/vis_data/scalars.json, */*.log); the run must '
            'validate at its last iteration (val_interval dividing '
            'max_iters) and --metric must name a logged key')
    step, rec, source = best
    return dict(value=float(rec[metric]), step=step, record=rec,
                source=source)


def pad_stats(record: dict) -> dict | None:
    """``PADDilationMetric`` keys of a validation record: pooled sigma^2(d)
    and mean dilation, and per layer sigma^2(d) and the share of each
    dilation (``{layer: dict(var_dilation, shares={d: fraction})}``)."""
    if 'pad/var_dilation' not in record:
        return None
    layers: dict[str, dict] = {}
    for key, value in record.items():
        m = re.fullmatch(r'pad/(.+)/frac_d(\d+)', key)
        if m:
            layers.setdefault(m.group(1), dict(shares={}))['shares'][int(
                m.group(2))] = float(value)
            continue
        m = re.fullmatch(r'pad/(.+)/var_dilation', key)
        if m:
            layers.setdefault(m.group(1), dict(shares={}))[
                'var_dilation'] = float(value)
    for lay in layers.values():
        lay['shares'] = {d: lay['shares'][d] for d in sorted(lay['shares'])}
    return dict(var_dilation=float(record['pad/var_dilation']),
                mean_dilation=float(record.get('pad/mean_dilation',
                                               math.nan)),
                layers=layers)


def last_checkpoint_step(work_dir: str) -> int | None:
    """Iteration / epoch of the run's last checkpoint (``last_checkpoint``
    names ``iter_N.pth`` or ``epoch_N.pth``), None if unknown."""
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        m = re.search(r'(?:iter|epoch)_(\d+)\.pth', f.read())
    return int(m.group(1)) if m else None


_ITER = re.compile(r'(?:Iter|Epoch)\(train\)\s*\[\s*(\d+)\s*/\s*(\d+)\]')


def train_progress(work_dir: str) -> float | None:
    """Fraction of training done by a running run: its last
    ``Iter(train) [i/N]`` line in the newest text log of the work dir (or
    in its ``train_stdout.log``); None if unknown."""
    logs = [osp.join(d, osp.basename(d) + '.log')
            for d in _timestamp_dirs(work_dir)[-1:]]
    for log in logs + [osp.join(work_dir, STDOUT_FILE)]:
        try:
            with open(log, 'rb') as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 20000))
                tail = f.read().decode('utf-8', 'replace')
        except OSError:
            continue
        hits = _ITER.findall(tail)
        if hits:
            i, n = map(int, hits[-1])
            return min(i / n, 1.0) if n else None
    return None


# ---------------------------------------------------------------------------
# summaries
def _fmt(x: float, digits: int = 2) -> str:
    return '—' if x is None or (isinstance(x, float) and math.isnan(x)) \
        else f'{x:.{digits}f}'


def _pm(mean: float, std: float, n: int, digits: int = 2) -> str:
    if n == 0:
        return '—'
    return f'{_fmt(mean, digits)} ± {_fmt(std, digits)} ({n})'


def summarise(runs: list[Run], names: list[str], configs: list[str],
              metric: str, baselines: list[str], seeds: list[int]) -> dict:
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
            vm, vs, vn = mean_std([p['var_dilation'] for p in pads.values()])
            layers = {}
            for p in pads.values():
                for lname, lay in p['layers'].items():
                    acc = layers.setdefault(lname, dict(var=[], shares={}))
                    acc['var'].append(lay.get('var_dilation', math.nan))
                    for d, f in lay['shares'].items():
                        acc['shares'].setdefault(int(d), []).append(f)
            entry['pad'] = dict(
                var_dilation=dict(mean=vm, std=vs, n=vn,
                                  values={s: p['var_dilation']
                                          for s, p in pads.items()}),
                layers={ln: dict(
                    var_dilation=mean_std(a['var'])[0],
                    shares={d: mean_std(v)[0]
                            for d, v in sorted(a['shares'].items())})
                    for ln, a in layers.items()})
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


def _json_safe(obj):
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def write_summaries(summary: dict, out_dir: str) -> list[str]:
    """summary.json/.csv/.md/.png under ``out_dir`` (each written to a
    temporary file first, then renamed)."""
    metric = summary['metric']
    paths = []

    def _write(name, text):
        path = osp.join(out_dir, name)
        with open(path + '.tmp', 'w', newline='') as f:
            f.write(text)
        os.replace(path + '.tmp', path)
        paths.append(path)

    _write('summary.json', json.dumps(_json_safe(summary), indent=1))

    # one row per finished run
    layer_cols: list[tuple[str, int]] = []
    for run in summary['runs']:
        for lname, lay in ((run.get('pad') or {}).get('layers') or
                           {}).items():
            for d in lay['shares']:
                if (lname, int(d)) not in layer_cols:
                    layer_cols.append((lname, int(d)))
    import io
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
    _write('summary.csv', buf.getvalue())
    _write('summary.md', render_markdown(summary))
    png = osp.join(out_dir, 'summary.png')
    if render_figure(summary, png + '.tmp.png'):
        os.replace(png + '.tmp.png', png)
        paths.append(png)
    return paths


def render_markdown(summary: dict) -> str:
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
        ds = sorted({int(d) for e in summary['configs']
                     for lay in e.get('pad', {}).get('layers', {}).values()
                     for d in lay['shares']})
        lines += ['', 'Share of pixels choosing each dilation per PAD layer '
                  '(final validation, hard argmax; mean over seeds):', '',
                  '| config | layer | ' + ' | '.join(f'd={d}' for d in ds) +
                  ' | σ²(d) |', '|---|---|' + '---|' * (len(ds) + 1)]
        for e in summary['configs']:
            for lname, lay in e.get('pad', {}).get('layers', {}).items():
                shares = {int(d): f for d, f in lay['shares'].items()}
                lines.append(
                    f'| {e["name"]} | {lname} | ' + ' | '.join(
                        _fmt(shares[d], 3) if d in shares else '—'
                        for d in ds) + f' | {_fmt(lay["var_dilation"], 3)} |')
    lines += ['', 'Runs:', '', f'| config | seed | {metric} | step | '
              'train wall (s) |', '|---|---|---|---|---|']
    for r in summary['runs']:
        lines.append(f'| {r["name"]} | {r["seed"]} | {r["value"]:.4f} | '
                     f'{r["step"]} | {_fmt(r.get("train_wall_s"), 0)}'
                     f'{" (resumed)" if r.get("resumed") else ""} |')
    for f in summary['failed']:
        lines.append(f'| {f["name"]} | {f["seed"]} | failed | | |')
    return '\n'.join(lines) + '\n'


def render_figure(summary: dict, path: str) -> bool:
    """Metric per config: each seed a dot, mean +- std as a bar."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('[sweep] matplotlib missing: no summary.png', flush=True)
        return False
    configs = summary['configs']
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(configs) + 1.5),
                                    4.0))
    for i, e in enumerate(configs):
        vals = list(e['values'].values())
        k = len(vals)
        xs = [i + (j - (k - 1) / 2) * 0.08 for j in range(k)]
        ax.scatter(xs, vals, s=16, color='tab:blue', alpha=0.7, zorder=3,
                   label='seed' if i == 0 else None)
        if e['n']:
            std = 0.0 if math.isnan(e['std']) else e['std']
            ax.errorbar([i + 0.25], [e['mean']], yerr=[std], fmt='o',
                        color='black', capsize=4, zorder=4,
                        label='mean ± std' if i == 0 else None)
    base = summary['baseline']
    if base is not None:
        b = next(e for e in configs if e['name'] == base)
        if b['n']:
            ax.axhline(b['mean'], color='gray', ls='--', lw=1,
                       label=f'{base} mean')
    ax.set_xticks(range(len(configs)))
    ax.set_xticklabels([e['name'] for e in configs], rotation=30,
                       ha='right')
    ax.set_ylabel(summary['metric'])
    ax.set_title(f'{summary["metric"]} per config '
                 f'({summary["runs_finished"]}/{summary["runs_total"]} runs)')
    ax.grid(axis='y', alpha=0.3)
    # outside the axes: inside, it can hide a seed's dot
    ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=120, format='png', bbox_inches='tight')
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------
# scheduling
def _hms(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return '?'
    s = int(round(seconds))
    return f'{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}'


def estimate_eta(pending: list[Run], running: list[Run], done: list[Run],
                 jobs: int, now: float) -> float | None:
    """Seconds until all runs are done: the mean train time of finished
    runs of the same config (else of all finished runs; else, for a
    running run, its own progress), scheduled greedily on ``jobs``
    workers."""
    times: dict[str, list[float]] = {}
    for r in done:
        if r.result and r.result.get('train_wall_s') and \
                not r.result.get('resumed'):
            times.setdefault(r.name, []).append(r.result['train_wall_s'])
    all_times = [t for v in times.values() for t in v]

    def typical(r: Run) -> float | None:
        v = times.get(r.name) or all_times
        return sum(v) / len(v) if v else None

    workers = []
    for r in running:
        elapsed = now - r.started
        frac = train_progress(r.work_dir)
        if frac is not None and frac - r.start_frac > 0.02:
            left = elapsed * (1 - frac) / (frac - r.start_frac)
        else:
            t = typical(r)
            if t is None:
                return None
            left = max(t - elapsed, 0.0)
        workers.append(left)
    workers += [0.0] * max(jobs - len(workers), 0)
    heapq.heapify(workers)
    for r in pending:
        t = typical(r)
        if t is None:
            return None
        heapq.heappush(workers, heapq.heappop(workers) + t)
    return max(workers) if workers else 0.0


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Train configs x seeds, summarise mean ± std and paired '
        'differences to a baseline')
    parser.add_argument('configs', nargs='+', metavar='CONFIG')
    parser.add_argument('--seeds', nargs='+', type=int, required=True)
    parser.add_argument('--work-dir', required=True,
                        help='runs go to WORK_DIR/<config>/seed_<S>, '
                        'summaries to WORK_DIR')
    parser.add_argument('--baseline', nargs='+', default=[],
                        metavar='CONFIG', help='config(s) among CONFIG '
                        '(path or name) to which paired differences are '
                        'computed (one column each)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='passed to every run (before '
                        'randomness.seed=S)')
    parser.add_argument('--metric', help='logged validation key; default '
                        'mIoU (mmseg) / accuracy/top1 (mmpretrain)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='trainings at once (default 1)')
    parser.add_argument('--threads', type=int,
                        help='OMP/MKL threads of each training (default: '
                        'inherited environment)')
    parser.add_argument('--progress-interval', type=float, default=60.0,
                        help='seconds between progress lines while runs '
                        'train (default 60)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the runs and their commands, train '
                        'nothing')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}')
    if args.threads is not None and args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}')
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds must be distinct, got {args.seeds}')
    for c in args.configs:
        if not osp.isfile(c):
            parser.error(f'CONFIG: no such file {c!r}')
    if len({osp.abspath(c) for c in args.configs}) != len(args.configs):
        parser.error(f'CONFIG: a config is given twice: {args.configs}')
    for opt in args.cfg_options:
        if '=' not in opt:
            parser.error(f'--cfg-options: {opt!r} is not KEY=VALUE')
        if opt.split('=', 1)[0] in ('randomness.seed', 'work_dir'):
            parser.error(f'--cfg-options: {opt!r}: the sweep sets the seed '
                         'and the work dir of every run itself')
    # parsed like tools/train.py parses them
    p = argparse.ArgumentParser()
    p.add_argument('--o', nargs='+', action=DictAction)
    args.options = (p.parse_args(['--o', *args.cfg_options]).o
                    if args.cfg_options else {})
    return args


def _resolve_baselines(baselines: list[str], configs: list[str],
                       names: list[str]) -> list[str]:
    out = [_resolve_baseline(b, configs, names) for b in baselines]
    if len(set(out)) != len(out):
        raise SystemExit(f'--baseline names a config twice: {baselines}')
    return out


def _resolve_baseline(baseline: str, configs: list[str],
                      names: list[str]) -> str:
    for c, n in zip(configs, names):
        if baseline == n or (osp.exists(baseline) and
                             osp.abspath(baseline) == osp.abspath(c)):
            return n
    raise SystemExit(f'--baseline={baseline!r} is not one of the configs; '
                     f'allowed: {configs} or their names {names}')


def _check_settings(work_dir: str, cfg_options: list[str]) -> None:
    path = osp.join(work_dir, SETTINGS_FILE)
    if osp.isfile(path):
        with open(path) as f:
            old = json.load(f)
        if old.get('cfg_options') != cfg_options:
            raise SystemExit(
                f'--work-dir {work_dir!r} holds a sweep with --cfg-options '
                f'{old.get("cfg_options")}, not {cfg_options}: its runs '
                'would not be comparable; use another --work-dir')
    os.makedirs(work_dir, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(dict(cfg_options=cfg_options), f, indent=1)


def command(run: Run, cfg_options: list[str]) -> list[str]:
    cmd = [sys.executable, TRAIN, run.wrapper or run.config, '--work-dir',
           run.work_dir, '--cfg-options', *cfg_options,
           f'randomness.seed={run.seed}']
    if osp.isfile(osp.join(run.work_dir, 'last_checkpoint')):
        cmd.append('--resume')
    return cmd


def main(argv=None) -> dict:
    args = parse_args(argv)
    configs = args.configs
    names = config_names(configs)
    baselines = _resolve_baselines(args.baseline, configs, names)
    info = {c: inspect_config(c, args.options) for c in configs}
    scopes = {i['scope'] for i in info.values()}
    metric = args.metric
    if metric is None:
        if len(scopes) > 1:
            raise SystemExit(f'the configs mix scopes {sorted(scopes)}: '
                             'give --metric')
        metric = DEFAULT_METRICS[scopes.pop()]
    if not args.dry_run:
        _check_settings(args.work_dir, args.cfg_options)

    runs: list[Run] = []
    for seed in args.seeds:
        for config, name in zip(configs, names):
            wd = osp.join(args.work_dir, name, f'seed_{seed}')
            i = info[config]
            wrapper = write_wrapper(config, i['custom_hooks'], wd) \
                if i['is_pad'] and not args.dry_run else None
            run = Run(config, name, seed, wd, i['is_pad'], wrapper)
            if osp.isfile(run.result_file):
                with open(run.result_file) as f:
                    run.result = json.load(f)
                if run.result.get('cfg_options') != args.cfg_options or \
                        run.result.get('metric') != metric:
                    raise SystemExit(
                        f'{run.result_file}: made with --cfg-options '
                        f'{run.result.get("cfg_options")} / metric '
                        f'{run.result.get("metric")!r}, not '
                        f'{args.cfg_options} / {metric!r}; use another '
                        '--work-dir')
            runs.append(run)

    if args.dry_run:
        for r in runs:
            state = 'done' if r.result else 'to run'
            print(f'{r.label}: {state}: '
                  f'{" ".join(command(r, args.cfg_options))}')
        return {}

    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if args.threads is not None:
        for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
            env[k] = str(args.threads)

    done = [r for r in runs if r.result is not None]
    pending = [r for r in runs if r.result is None]
    running: list[Run] = []
    t0 = time.time()
    print(f'[sweep] {len(runs)} runs ({len(configs)} configs x '
          f'{len(args.seeds)} seeds), {len(done)} already finished '
          f'(skipped), {len(pending)} to train; --jobs {args.jobs}'
          f'{f", --threads {args.threads}" if args.threads else ""}; '
          f'metric {metric!r}', flush=True)
    for r in done:
        print(f'[sweep] skip {r.label}: finished ({metric} '
              f'{r.result["value"]:.4f})', flush=True)

    def summarise_now():
        s = summarise(runs, names, configs, metric, baselines, args.seeds)
        write_summaries(s, args.work_dir)
        return s

    summary = summarise_now()

    def progress(event: str):
        now = time.time()
        eta = estimate_eta(pending, running, done, args.jobs, now)
        failed = sum(r.error is not None for r in runs)
        print(f'[sweep] {len(done)}/{len(runs)} done'
              f'{f", {failed} failed" if failed else ""}, '
              f'{len(running)} running, {len(pending)} waiting; elapsed '
              f'{_hms(now - t0)}, ETA {_hms(eta)}: {event}', flush=True)

    def start(run: Run):
        os.makedirs(run.work_dir, exist_ok=True)
        cmd = command(run, args.cfg_options)
        run.resumed = '--resume' in cmd
        run.start_frac = (train_progress(run.work_dir) or 0.0) \
            if run.resumed else 0.0
        run.stdout = open(osp.join(run.work_dir, STDOUT_FILE), 'a')
        run.stdout.write(f'\n# sweep: {" ".join(cmd)}\n')
        run.stdout.flush()
        run.started = time.time()
        run.error = None
        run.proc = subprocess.Popen(cmd, stdout=run.stdout,
                                    stderr=subprocess.STDOUT, env=env)
        run.cmd = cmd
        running.append(run)
        note = ' (resuming from its last checkpoint)' if run.resumed else ''
        progress(f'started {run.label}{note}')

    def finish(run: Run, rc: int):
        wall = time.time() - run.started
        run.stdout.close()
        running.remove(run)
        if rc != 0:
            run.error = f'exit status {rc}; see {run.work_dir}/{STDOUT_FILE}'
            progress(f'FAILED {run.label}: {run.error}')
            return
        try:
            final = read_final_metrics(run.work_dir, metric)
        except ValueError as e:
            run.error = str(e)
            progress(f'FAILED {run.label}: {run.error}')
            return
        end = last_checkpoint_step(run.work_dir)
        if end is not None and final['step'] >= 0 and final['step'] != end:
            run.error = (f'the last validation with {metric!r} is at step '
                         f'{final["step"]} but training ended at {end}: '
                         'the final metric must come from the end of '
                         'training (set train_cfg.val_interval to divide '
                         'max_iters)')
            progress(f'FAILED {run.label}: {run.error}')
            return
        result = dict(
            config=run.config, name=run.name, seed=run.seed, metric=metric,
            value=final['value'], step=final['step'],
            source=osp.relpath(final['source'], run.work_dir),
            pad=pad_stats(final['record']),
            val_record={k: v for k, v in final['record'].items()
                        if not k.startswith('pad/')},
            train_wall_s=round(wall, 1), resumed=run.resumed,
            threads=args.threads, jobs=args.jobs,
            cfg_options=args.cfg_options, command=run.cmd,
            finished=time.strftime('%Y-%m-%d %H:%M:%S'))
        with open(run.result_file + '.tmp', 'w') as f:
            json.dump(_json_safe(result), f, indent=1)
        os.replace(run.result_file + '.tmp', run.result_file)
        run.result = result
        done.append(run)
        nonlocal summary
        summary = summarise_now()
        progress(f'finished {run.label}: {metric} {final["value"]:.4f} '
                 f'in {_hms(wall)}')

    def _terminate(signum, frame):
        raise KeyboardInterrupt(f'signal {signum}')

    # `kill <sweep pid>` stops its trainings too (they resume next time)
    signal.signal(signal.SIGTERM, _terminate)
    last_report = time.time()
    try:
        while pending or running:
            while pending and len(running) < args.jobs:
                start(pending.pop(0))
            time.sleep(0.5)
            for run in list(running):
                rc = run.proc.poll()
                if rc is not None:
                    finish(run, rc)
            if running and time.time() - last_report >= \
                    args.progress_interval:
                last_report = time.time()
                bits = []
                for r in running:
                    frac = train_progress(r.work_dir)
                    bits.append(f'{r.label} '
                                f'{"?" if frac is None else f"{frac:.0%}"}')
                progress('training ' + ', '.join(bits))
    except KeyboardInterrupt:
        for run in running:
            run.proc.terminate()
        for run in running:
            try:
                run.proc.wait(30)
            except subprocess.TimeoutExpired:
                run.proc.kill()
        print('[sweep] interrupted; run the same command again to resume',
              flush=True)
        sys.exit(130)
    failed = [r for r in runs if r.error]
    print(f'[sweep] finished {len(done)}/{len(runs)} runs in '
          f'{_hms(time.time() - t0)}; summaries in {args.work_dir}/'
          'summary.{json,csv,md,png}', flush=True)
    if failed:
        print('[sweep] failed: ' + '; '.join(f'{r.label}: {r.error}'
                                             for r in failed), flush=True)
        sys.exit(1)
    return summary


if __name__ == '__main__':
    main()
