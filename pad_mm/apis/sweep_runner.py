"""The scheduler of a sweep: trains the unfinished runs of a
:class:`~pad_mm.apis.sweep.SweepPlan`, ``jobs`` processes at a time, and
rewrites the summaries after every finished run."""
from __future__ import annotations

import json
import os
import os.path as osp
import subprocess
import time
from collections.abc import Callable

from pad_mm.evaluation.run_logs import (last_checkpoint_step, pad_stats,
                                        read_final_metrics, train_progress)
from pad_mm.evaluation.sweep_summary import json_safe, summarise

from .sweep import (STDOUT_FILE, Run, SweepPlan, estimate_eta,
                    format_duration, train_command, write_summaries)

__all__ = ['run_sweep']


def _echo(line: str) -> None:
    print(line, flush=True)


def run_sweep(plan: SweepPlan,
              train_script: str,
              jobs: int = 1,
              threads: int | None = None,
              progress_interval: float = 60.0,
              echo: Callable[[str], None] = _echo) -> dict:
    """Train every run of ``plan`` without a result and return the final
    summary (:func:`pad_mm.evaluation.sweep_summary.summarise`).

    A run is ``train_script`` (``tools/train.py``) in a process of its own
    (output to ``train_stdout.log`` in its work dir); ``threads`` sets its
    ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``. A run whose process fails,
    or whose logs hold no final validation of ``plan.metric`` at the end
    of training, gets ``error`` set; the others keep going. Progress lines
    (``[sweep] ...``) go to ``echo``: at every start and end, and every
    ``progress_interval`` seconds while runs train.

    A finished run writes ``sweep_result.json`` in its work dir; the
    summaries (:func:`~pad_mm.apis.sweep.write_summaries`) are rewritten
    in ``plan.work_dir`` after each.

    Raises:
        KeyboardInterrupt: after terminating the running trainings (they
            resume from their last checkpoint next time).
    """
    runs, metric = plan.runs, plan.metric
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if threads is not None:
        for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
            env[k] = str(threads)
    done = [r for r in runs if r.result is not None]
    pending = [r for r in runs if r.result is None]
    running: list[Run] = []
    t0 = time.time()
    echo(f'[sweep] {len(runs)} runs ({len(plan.configs)} configs x '
         f'{len(plan.seeds)} seeds), {len(done)} already finished '
         f'(skipped), {len(pending)} to train; --jobs {jobs}'
         f'{f", --threads {threads}" if threads else ""}; '
         f'metric {metric!r}')
    for r in done:
        echo(f'[sweep] skip {r.label}: finished ({metric} '
             f'{r.result["value"]:.4f})')

    def summarise_now():
        s = summarise(runs, plan.names, plan.configs, metric, plan.baselines,
                      plan.seeds)
        write_summaries(s, plan.work_dir, echo)
        return s

    summary = summarise_now()

    def progress(event: str):
        now = time.time()
        eta = estimate_eta(pending, running, done, jobs, now)
        failed = sum(r.error is not None for r in runs)
        echo(f'[sweep] {len(done)}/{len(runs)} done'
             f'{f", {failed} failed" if failed else ""}, '
             f'{len(running)} running, {len(pending)} waiting; elapsed '
             f'{format_duration(now - t0)}, ETA {format_duration(eta)}: '
             f'{event}')

    def start(run: Run):
        os.makedirs(run.work_dir, exist_ok=True)
        cmd = train_command(run, plan.cfg_options, train_script)
        run.resumed = '--resume' in cmd
        run.start_frac = (train_progress(run.work_dir, (STDOUT_FILE, ))
                          or 0.0) if run.resumed else 0.0
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

    def fail(run: Run, error: str):
        run.error = error
        progress(f'FAILED {run.label}: {run.error}')

    def finish(run: Run, rc: int):
        wall = time.time() - run.started
        run.stdout.close()
        running.remove(run)
        if rc != 0:
            return fail(run, f'exit status {rc}; see {run.work_dir}/'
                        f'{STDOUT_FILE}')
        try:
            final = read_final_metrics(run.work_dir, metric)
        except ValueError as e:
            return fail(run, str(e))
        end = last_checkpoint_step(run.work_dir)
        if end is not None and final['step'] >= 0 and final['step'] != end:
            return fail(run, f'the last validation with {metric!r} is at '
                        f'step {final["step"]} but training ended at {end}: '
                        'the final metric must come from the end of '
                        'training (set train_cfg.val_interval to divide '
                        'max_iters)')
        result = dict(
            config=run.config, name=run.name, seed=run.seed, metric=metric,
            value=final['value'], step=final['step'],
            source=osp.relpath(final['source'], run.work_dir),
            pad=pad_stats(final['record']),
            val_record={k: v for k, v in final['record'].items()
                        if not k.startswith('pad/')},
            train_wall_s=round(wall, 1), resumed=run.resumed,
            threads=threads, jobs=jobs, cfg_options=plan.cfg_options,
            command=run.cmd, finished=time.strftime('%Y-%m-%d %H:%M:%S'))
        with open(run.result_file + '.tmp', 'w') as f:
            json.dump(json_safe(result), f, indent=1)
        os.replace(run.result_file + '.tmp', run.result_file)
        run.result = result
        done.append(run)
        nonlocal summary
        summary = summarise_now()
        progress(f'finished {run.label}: {metric} {final["value"]:.4f} '
                 f'in {format_duration(wall)}')

    last_report = time.time()
    try:
        while pending or running:
            while pending and len(running) < jobs:
                start(pending.pop(0))
            time.sleep(0.5)
            for run in list(running):
                rc = run.proc.poll()
                if rc is not None:
                    finish(run, rc)
            if running and time.time() - last_report >= progress_interval:
                last_report = time.time()
                bits = []
                for r in running:
                    frac = train_progress(r.work_dir, (STDOUT_FILE, ))
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
        raise
    failed = [r for r in runs if r.error]
    echo(f'[sweep] finished {len(done)}/{len(runs)} runs in '
         f'{format_duration(time.time() - t0)}; summaries in '
         f'{plan.work_dir}/summary.{{json,csv,md,png}}')
    if failed:
        echo('[sweep] failed: ' + '; '.join(f'{r.label}: {r.error}'
                                            for r in failed))
    return summary
