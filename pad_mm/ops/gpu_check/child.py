"""One section of the GPU check, run in its own process by the runner:
``python -m pad_mm.ops.gpu_check.child --out F --section NAME --budget S``.

Each section is a generator of ``(case name, function)``; every case's
result is written to the JSON file as soon as it is done. A case that
raises is recorded as ``error`` and the next one runs, except after a
sticky device error (the CUDA context is lost): the process then exits,
and the runner goes on with the next section. Cases that would start in
the last seconds of the budget are recorded as ``skipped``."""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from ..guard import error_kind
from .plan import INJECT_MODES, SECTION_NAMES
from .record import read_json, write_json

__all__ = ['Context', 'CaseIter', 'run_cases', 'main']

CaseIter = Iterator[tuple[str, Callable[[], dict]]]
#: a case does not start with less than this share of the budget left
RESERVE = 0.05


@dataclass
class Context:
    """What a section needs: the device, smoke or not, timing repeats and
    its deadline (``time.time()`` seconds)."""
    device: torch.device
    smoke: bool
    repeats: int
    warmup: int
    deadline: float
    budget: float

    def time_left(self) -> float:
        return self.deadline - time.time()


def _sections() -> dict[str, Callable[[Context], CaseIter]]:
    from . import (correctness, environment, graphs, memory, model_step,
                   speed)
    return dict(environment=environment.environment,
                compile=environment.warm_compile,
                quick_correctness=correctness.quick_correctness,
                speed=speed.speed, model=model_step.model,
                memory=memory.memory,
                correctness_matrix=correctness.correctness_matrix,
                graphs=graphs.graphs)


def run_cases(ctx: Context, out: str, section: str, cases: CaseIter,
              inject: str | None = None) -> None:
    """Run ``cases``, writing each result to ``out`` when it is done."""
    data = read_json(out)
    entry = data['sections'][section]
    t0 = time.time()

    def record(case: dict) -> None:
        case['elapsed_s'] = round(time.time() - t0, 2)
        entry['cases'].append(case)
        write_json(out, data)

    for i, (name, fn) in enumerate(cases):
        if ctx.time_left() < RESERVE * ctx.budget:
            record(dict(name=name, status='skipped', reason='budget'))
            continue
        t = time.time()
        try:
            if inject == 'error' and i == 0:
                raise RuntimeError('injected failure (--inject error)')
            result = dict(name=name, **fn())
            result.setdefault('status', 'passed')
        except Exception as err:  # recorded; the next case runs
            result = dict(name=name, status='error', error=repr(err),
                          traceback=traceback.format_exc()[-2000:])
            if error_kind(err) == 'fatal':
                result['fatal'] = True
        result['case_s'] = round(time.time() - t, 3)
        record(result)
        if result.get('fatal'):
            # a sticky CUDA error: every later CUDA call would fail
            print(f'fatal device error in {name}: {result["error"]}',
                  file=sys.stderr, flush=True)
            os._exit(3)
        if i == 0 and inject == 'crash':
            os.abort()
        if i == 0 and inject == 'hang':
            time.sleep(10**6)
    entry['complete'] = True
    write_json(out, data)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', required=True)
    p.add_argument('--section', required=True, choices=SECTION_NAMES)
    p.add_argument('--budget', type=float, required=True)
    p.add_argument('--repeats', type=int, default=20)
    p.add_argument('--smoke', action='store_true')
    p.add_argument('--inject', choices=INJECT_MODES)
    args = p.parse_args(argv)
    t0 = time.time()
    if args.smoke:
        device = torch.device('cpu')
        repeats, warmup = 1, 0
    else:
        if not torch.cuda.is_available():
            raise SystemExit('the GPU check needs a CUDA GPU (or --smoke)')
        device = torch.device('cuda')
        torch.backends.cudnn.benchmark = True
        repeats, warmup = args.repeats, 3
    ctx = Context(device, args.smoke, repeats, warmup, t0 + args.budget,
                  args.budget)
    cases = _sections()[args.section](ctx)
    run_cases(ctx, args.out, args.section, cases, args.inject)


if __name__ == '__main__':
    main()
