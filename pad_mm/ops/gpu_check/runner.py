"""The runner: each section of :data:`.plan.SECTIONS` in its own process,
killed at its time budget; the JSON file is rewritten after every case
(by the section's process) and after every section (here), so a crash,
a hang or a kill loses nothing recorded before it and does not stop the
next section."""
from __future__ import annotations

import contextlib
import datetime
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pad_mm

from .plan import SECTIONS, TOTAL_BUDGET_S
from .record import read_json, section_status, write_json

__all__ = ['run_check', 'package_root', 'child_env', 'Terminated']

#: characters of a section's output kept in the JSON
LOG_TAIL = 4000


def package_root() -> str:
    """The folder holding the ``pad_mm`` package (put on the section
    processes' ``PYTHONPATH``: the check runs from a checkout without an
    install)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(
        pad_mm.__file__)))


def child_env(smoke: bool) -> dict[str, str]:
    """The environment of a section's process: ``pad_mm`` importable, and
    Triton's interpreter on in ``--smoke`` (off otherwise)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [package_root()] + [p for p in env.get('PYTHONPATH', '').split(
            os.pathsep) if p])
    if smoke:
        env['TRITON_INTERPRET'] = '1'
    else:
        env.pop('TRITON_INTERPRET', None)
    return env


def _tail(path: str) -> str:
    with open(path, errors='replace') as f:
        return f.read()[-LOG_TAIL:]


def run_check(out: str, sections: Sequence[str] | None = None,
              smoke: bool = False, budgets: dict[str, float] | None = None,
              time_limit: float | None = None, repeats: int = 20,
              inject: dict[str, str] | None = None, command: str = '',
              echo: Callable[[str], None] | None = None) -> dict:
    """Run the ``sections`` (default: all, in order) and return the JSON
    data written to ``out``.

    A section's process gets ``min(budget, time left of time_limit)``
    seconds (``budgets`` overrides :data:`.plan.SECTIONS`' per name); it
    is killed past it (its process group), and the section is recorded
    ``timed_out`` with the cases it wrote. A section that would start
    with less than a second of ``time_limit`` left is ``skipped``.
    ``time_limit`` None: :data:`.plan.TOTAL_BUDGET_S` (smoke: the sum of
    the smoke budgets). ``inject`` (tests): section name ->
    :data:`.plan.INJECT_MODES`. SIGTERM or SIGHUP during the run kill
    the running section's process group, record the section as
    ``failed`` (``terminated_by_signal`` in the JSON) and exit with
    ``128 + signum``."""
    budgets, inject = dict(budgets or {}), dict(inject or {})
    chosen = [s for s in SECTIONS if sections is None or s.name in sections]
    if time_limit is None:
        time_limit = sum(s.smoke_budget_s for s in SECTIONS) if smoke \
            else TOTAL_BUDGET_S
    t0 = time.time()
    data = dict(
        command=command,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        smoke=smoke, host_python=platform.python_version(),
        time_limit_s=time_limit, finished=False, sections={})
    for i, s in enumerate(chosen):
        data['sections'][s.name] = dict(
            index=SECTIONS.index(s) + 1, title=s.title,
            budget_s=budgets.get(s.name, s.smoke_budget_s if smoke
                                 else s.budget_s),
            status='pending', cases=[])
    write_json(out, data)
    with _signals_raise():
        data = _run_sections(out, data, chosen, t0, time_limit, smoke,
                             repeats, inject, echo)
    data.update(finished=True, total_s=round(time.time() - t0, 1))
    write_json(out, data)
    return data


class Terminated(BaseException):
    """The check got SIGTERM or SIGHUP (e.g. from ``timeout`` or a
    closed terminal): the running section's process group is killed, the
    JSON records it, and the process exits with ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` inside the block
    (main thread only; elsewhere a no-op), so that no section process
    outlives the check (they run in their own sessions, which a signal
    to the check's process group does not reach)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, 'SIGHUP')
                               else [])
    old = {s: signal.signal(s, _raise_terminated) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _run_sections(out: str, data: dict, chosen: list, t0: float,
                  time_limit: float, smoke: bool, repeats: int,
                  inject: dict[str, str],
                  echo: Callable[[str], None] | None) -> dict:
    for s in chosen:
        entry = data['sections'][s.name]
        left = time_limit - (time.time() - t0)
        if left < 1.0:
            entry.update(status='skipped', reason='time limit')
            write_json(out, data)
            continue
        budget = min(entry['budget_s'], left)
        entry.update(status='running', started_s=round(time.time() - t0, 1),
                     effective_budget_s=round(budget, 1))
        write_json(out, data)
        if echo:
            echo(f'[{entry["index"]}/8] {s.name} (budget {budget:.0f} s)')
        try:
            code, timed_out, log, wall = _run_section(
                out, s.name, budget, smoke, repeats, inject.get(s.name))
        except Terminated as err:  # the section's group is already killed
            data = read_json(out)
            data['sections'][s.name].update(
                status='failed', error=f'the check was terminated by '
                f'signal {err.signum}; the section was killed')
            data.update(finished=False, terminated_by_signal=err.signum,
                        total_s=round(time.time() - t0, 1))
            write_json(out, data)
            raise SystemExit(128 + err.signum) from None
        data = read_json(out)  # the cases the section wrote
        entry = data['sections'][s.name]
        entry.update(exit_code=code, wall_s=round(wall, 1),
                     status=section_status(entry['cases'], code, timed_out))
        if code != 0 or timed_out:
            entry['log_tail'] = log
            entry['error'] = (f'killed after {budget:.0f} s (budget)'
                              if timed_out else
                              f'the process exited with code {code}')
        write_json(out, data)
        if echo:
            echo(f'      {entry["status"]} ({len(entry["cases"])} cases, '
                 f'{wall:.1f} s)')
    return data


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the section's process and any worker it started (its own
    process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _run_section(out: str, name: str, budget: float, smoke: bool,
                 repeats: int, inject: str | None
                 ) -> tuple[int | None, bool, str, float]:
    """(exit code, timed out, output tail, seconds) of one section's
    process."""
    cmd = [sys.executable, '-m', 'pad_mm.ops.gpu_check.child', '--out', out,
           '--section', name, '--budget', str(budget), '--repeats',
           str(repeats)]
    if smoke:
        cmd.append('--smoke')
    if inject:
        cmd += ['--inject', inject]
    t = time.time()
    with tempfile.NamedTemporaryFile('w+', suffix='.log') as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env=child_env(smoke), start_new_session=True)
        timed_out = False
        try:
            code = proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            code = proc.wait()
        except BaseException:  # Ctrl-C: leave no section running
            _kill_group(proc)
            raise
        log.flush()
        return code, timed_out, _tail(log.name), time.time() - t
