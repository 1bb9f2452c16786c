"""GPU check of the PAD kernels: correctness, speed, memory, a model step.

Eight sections, each in its own process with its own time budget (about
five minutes on one H100 in all); the JSON file (``--out``) is rewritten
after every case, so a crash, a hang or a kill in one section loses
nothing before it and the next section still runs. Needs torch and triton
only (plus ``pad_mm.ops``, which is torch-only): it runs on a GPU machine
without OpenMMLab, from the repository root, with no PYTHONPATH. The
sections and the JSON are described in ``pad_mm/ops/gpu_check`` and
docs/advanced/performance.md.

Usage::

    python tools/analysis_tools/gpu_check.py --out gpu_check.json \
        --table gpu_check.md
    # CI, no GPU: every section at tiny sizes in Triton's interpreter
    python tools/analysis_tools/gpu_check.py --smoke --out smoke.json

Exit status 0 when every section chosen passed, else 1.
"""
from __future__ import annotations

import argparse
import os
import sys

# run from the repo root as documented, with no PYTHONPATH
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', '..'))
from pad_mm.ops.gpu_check import (INJECT_MODES, SECTION_NAMES,  # noqa: E402
                                  TOTAL_BUDGET_S, markdown_summary,
                                  run_check)


def _pairs(p: argparse.ArgumentParser, values: list[str], option: str,
           convert, allowed: str) -> dict:
    out = {}
    for v in values:
        name, sep, val = v.partition('=')
        if not sep or name not in SECTION_NAMES:
            p.error(f'{option}: expected SECTION=VALUE with SECTION one of '
                    f'{",".join(SECTION_NAMES)}, got {v!r}')
        try:
            out[name] = convert(val)
        except ValueError:
            p.error(f'{option} {name}: {val!r} is not {allowed}')
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='gpu_check.json')
    p.add_argument('--table', help='also write the markdown summary here')
    p.add_argument('--smoke', action='store_true',
                   help="tiny sizes on the CPU in Triton's interpreter (CI)")
    p.add_argument('--sections', default=','.join(SECTION_NAMES),
                   help='comma-separated, of: ' + ','.join(SECTION_NAMES))
    p.add_argument('--time-limit', type=float,
                   help='seconds for the whole run (default '
                   f'{TOTAL_BUDGET_S:.0f}; --smoke: the sum of its section '
                   'budgets); a section gets at most what is left, later '
                   'sections are recorded as skipped')
    p.add_argument('--budget', action='append', default=[],
                   metavar='SECTION=SECONDS',
                   help="override a section's time budget")
    p.add_argument('--repeats', type=int, default=20,
                   help='timed runs per speed measurement (>= 20)')
    p.add_argument('--inject', action='append', default=[],
                   metavar='SECTION=MODE',
                   help='for the tests of the runner: make SECTION fail '
                   f'({"|".join(INJECT_MODES)})')
    args = p.parse_args(argv)
    if args.repeats < 20:
        p.error(f'--repeats must be >= 20, got {args.repeats}')
    sections = args.sections.split(',')
    unknown = [s for s in sections if s not in SECTION_NAMES]
    if unknown:
        p.error(f'--sections: unknown {unknown}; allowed: '
                f'{",".join(SECTION_NAMES)}')
    args.sections = sections

    def seconds(v):
        s = float(v)
        if not s > 0:
            raise ValueError(v)
        return s

    def mode(v):
        if v not in INJECT_MODES:
            raise ValueError(v)
        return v

    args.budget = _pairs(p, args.budget, '--budget', seconds,
                         'a positive number of seconds')
    args.inject = _pairs(p, args.inject, '--inject', mode,
                         f'one of {"|".join(INJECT_MODES)}')
    return args


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    data = run_check(
        args.out, args.sections, args.smoke, args.budget, args.time_limit,
        args.repeats, args.inject,
        command=' '.join(['python', 'tools/analysis_tools/gpu_check.py']
                         + argv), echo=print)
    table = markdown_summary(data)
    print(table)
    if args.table:
        with open(args.table, 'w') as f:
            f.write(table + '\n')
    return data


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    result = main()
    sys.exit(0 if all(s['status'] == 'passed'
                      for s in result['sections'].values()) else 1)
