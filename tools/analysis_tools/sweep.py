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
import os.path as osp
import signal
import sys

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(REPO, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, REPO)
TRAIN = osp.join(REPO, 'tools', 'train.py')

from pad_mm.apis.sweep import (SweepError, plan_sweep,  # noqa: E402
                               train_command)
from pad_mm.apis.sweep_runner import run_sweep  # noqa: E402


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


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        plan = plan_sweep(args.configs, args.seeds, args.work_dir,
                          args.baseline, args.cfg_options, args.options,
                          args.metric, dry_run=args.dry_run)
    except SweepError as e:
        raise SystemExit(str(e)) from None
    if args.dry_run:
        for r in plan.runs:
            state = 'done' if r.result else 'to run'
            print(f'{r.label}: {state}: '
                  f'{" ".join(train_command(r, args.cfg_options, TRAIN))}')
        return {}

    def _terminate(signum, frame):
        raise KeyboardInterrupt(f'signal {signum}')

    # `kill <sweep pid>` stops its trainings too (they resume next time)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        summary = run_sweep(plan, TRAIN, args.jobs, args.threads,
                            args.progress_interval)
    except KeyboardInterrupt:
        print('[sweep] interrupted; run the same command again to resume',
              flush=True)
        sys.exit(130)
    if any(r.error for r in plan.runs):
        sys.exit(1)
    return summary


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
