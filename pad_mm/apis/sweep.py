"""Train configs x seeds, each run one training process, and keep a
summary of them up to date (the library of
``tools/analysis_tools/sweep.py``, whose docstring describes the
behaviour).

- :func:`plan_sweep`: the runs (one per config and seed, seed-major), their
  work dirs and what of them already finished;
- :func:`pad_mm.apis.sweep_runner.run_sweep`: trains the runs not
  finished, ``jobs`` at a time, resumes interrupted ones, rewrites the
  summaries after every finished run (:func:`write_summaries`) and
  reports progress through ``echo``.

Statistics are :mod:`pad_mm.evaluation.stats`, log reading
:mod:`pad_mm.evaluation.run_logs`, the summary
:mod:`pad_mm.evaluation.sweep_summary`.
"""
from __future__ import annotations

import heapq
import importlib.util
import json
import math
import os
import os.path as osp
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from pad_mm.evaluation.run_logs import train_progress
from pad_mm.evaluation.sweep_summary import (json_safe, render_markdown,
                                             summary_csv)

__all__ = [
    'RESULT_FILE', 'SETTINGS_FILE', 'STDOUT_FILE', 'WRAPPER_FILE',
    'DEFAULT_METRICS', 'SweepError', 'Run', 'SweepPlan', 'config_names',
    'inspect_config', 'write_wrapper', 'train_command', 'format_duration',
    'estimate_eta', 'write_summaries', 'plan_sweep'
]

RESULT_FILE = 'sweep_result.json'
SETTINGS_FILE = 'sweep.json'
STDOUT_FILE = 'train_stdout.log'
WRAPPER_FILE = 'sweep_config.py'
DEFAULT_METRICS = {'mmseg': 'mIoU', 'mmpretrain': 'accuracy/top1'}
STATS_HOOK = 'PADDilationStatsHook'


class SweepError(ValueError):
    """A sweep that cannot start as asked (the message says why)."""


@dataclass
class Run:
    """One training of a sweep: a config with a seed."""
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
    """Task scope, PAD-ness and custom hooks of a config (+ options),
    without importing its custom modules.

    Raises:
        ValueError: the config's ``default_scope`` is not one the sweep
            knows a metric of.
    """
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


def train_command(run: Run, cfg_options: list[str],
                  train_script: str) -> list[str]:
    """The command line of ``run``: ``train_script`` (``tools/train.py``)
    with the sweep's ``--cfg-options`` and the run's seed, ``--resume``
    when the work dir has a checkpoint."""
    cmd = [sys.executable, train_script, run.wrapper or run.config,
           '--work-dir', run.work_dir, '--cfg-options', *cfg_options,
           f'randomness.seed={run.seed}']
    if osp.isfile(osp.join(run.work_dir, 'last_checkpoint')):
        cmd.append('--resume')
    return cmd


def format_duration(seconds: float | None) -> str:
    """``H:MM:SS`` (``?`` for None / NaN)."""
    if seconds is None or math.isnan(seconds):
        return '?'
    s = int(round(seconds))
    return f'{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}'


def estimate_eta(pending: list[Run], running: list[Run], done: list[Run],
                 jobs: int, now: float) -> float | None:
    """Seconds until all runs are done: the mean train time of finished
    runs of the same config (else of all finished runs; else, for a
    running run, its own progress), scheduled greedily on ``jobs``
    workers. None while nothing tells."""
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
        frac = train_progress(r.work_dir, (STDOUT_FILE, ))
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


def write_summaries(summary: dict, out_dir: str,
                    echo: Callable[[str], None] = print) -> list[str]:
    """summary.json/.csv/.md/.png under ``out_dir`` (each written to a
    temporary file first, then renamed); returns the paths written."""
    paths = []

    def _write(name, text):
        path = osp.join(out_dir, name)
        with open(path + '.tmp', 'w', newline='') as f:
            f.write(text)
        os.replace(path + '.tmp', path)
        paths.append(path)

    _write('summary.json', json.dumps(json_safe(summary), indent=1))
    _write('summary.csv', summary_csv(summary))
    _write('summary.md', render_markdown(summary))
    if importlib.util.find_spec('matplotlib') is None:
        echo('[sweep] matplotlib missing: no summary.png')
        return paths
    from pad_mm.visualization import render_sweep_figure
    png = osp.join(out_dir, 'summary.png')
    os.replace(render_sweep_figure(summary, png + '.tmp.png'), png)
    paths.append(png)
    return paths


@dataclass
class SweepPlan:
    """What a sweep trains: ``runs`` seed-major (all configs of the first
    seed first, so partial results stay balanced)."""
    configs: list[str]
    names: list[str]
    seeds: list[int]
    baselines: list[str]  # names
    metric: str
    work_dir: str
    cfg_options: list[str]  # KEY=VALUE, passed to every run
    runs: list[Run]


def _resolve_baseline(baseline: str, configs: list[str],
                      names: list[str]) -> str:
    for c, n in zip(configs, names):
        if baseline == n or (osp.exists(baseline) and
                             osp.abspath(baseline) == osp.abspath(c)):
            return n
    raise SweepError(f'--baseline={baseline!r} is not one of the configs; '
                     f'allowed: {configs} or their names {names}')


def _check_settings(work_dir: str, cfg_options: list[str]) -> None:
    path = osp.join(work_dir, SETTINGS_FILE)
    if osp.isfile(path):
        with open(path) as f:
            old = json.load(f)
        if old.get('cfg_options') != cfg_options:
            raise SweepError(
                f'--work-dir {work_dir!r} holds a sweep with --cfg-options '
                f'{old.get("cfg_options")}, not {cfg_options}: its runs '
                'would not be comparable; use another --work-dir')
    os.makedirs(work_dir, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(dict(cfg_options=cfg_options), f, indent=1)


def plan_sweep(configs: list[str], seeds: list[int], work_dir: str,
               baselines: list[str] = (), cfg_options: list[str] = (),
               options: dict | None = None, metric: str | None = None,
               dry_run: bool = False) -> SweepPlan:
    """The runs of ``configs`` x ``seeds`` under ``work_dir`` (run dirs
    ``<work_dir>/<name>/seed_<S>``), finished ones with their result.

    Args:
        baselines: configs (path or name) to compare the others with.
        cfg_options: ``KEY=VALUE`` strings for every run; ``options``:
            the same parsed (as ``tools/train.py`` parses them).
        metric: the logged validation key; default by the configs'
            ``default_scope`` (:data:`DEFAULT_METRICS`).
        dry_run: write nothing (no settings file, no wrapper configs).

    Raises:
        SweepError: a baseline is not among the configs or named twice,
            the configs mix scopes without ``metric``, or ``work_dir``
            holds runs made with other ``cfg_options`` or metric.
    """
    configs, cfg_options = list(configs), list(cfg_options)
    names = config_names(configs)
    bases = [_resolve_baseline(b, configs, names) for b in baselines]
    if len(set(bases)) != len(bases):
        raise SweepError(f'--baseline names a config twice: {baselines}')
    info = {c: inspect_config(c, options or {}) for c in configs}
    scopes = {i['scope'] for i in info.values()}
    if metric is None:
        if len(scopes) > 1:
            raise SweepError(f'the configs mix scopes {sorted(scopes)}: '
                             'give --metric')
        metric = DEFAULT_METRICS[scopes.pop()]
    if not dry_run:
        _check_settings(work_dir, cfg_options)
    runs: list[Run] = []
    for seed in seeds:
        for config, name in zip(configs, names):
            wd = osp.join(work_dir, name, f'seed_{seed}')
            i = info[config]
            wrapper = write_wrapper(config, i['custom_hooks'], wd) \
                if i['is_pad'] and not dry_run else None
            run = Run(config, name, seed, wd, i['is_pad'], wrapper)
            if osp.isfile(run.result_file):
                with open(run.result_file) as f:
                    run.result = json.load(f)
                if run.result.get('cfg_options') != cfg_options or \
                        run.result.get('metric') != metric:
                    raise SweepError(
                        f'{run.result_file}: made with --cfg-options '
                        f'{run.result.get("cfg_options")} / metric '
                        f'{run.result.get("metric")!r}, not '
                        f'{cfg_options} / {metric!r}; use another '
                        '--work-dir')
            runs.append(run)
    return SweepPlan(configs, names, list(seeds), bases, metric, work_dir,
                     cfg_options, runs)
