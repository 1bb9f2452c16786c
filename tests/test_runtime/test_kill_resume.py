"""Kill a training run with SIGKILL in the middle of a checkpoint write,
resume it, and get bit-exactly the parameters of an uninterrupted run; no
``.pth`` in the work dir is ever unreadable. Single process (killed run
launched with mmseg's own tools/train.py when it is installed, so the
custom_imports path is covered) and 2 processes with tools/dist_train.sh
on the CPU (gloo).

The write is slowed by ``ckpt_kill_helpers`` (imported into the training
processes through custom_imports): it writes the checkpoint in chunks with
pauses and leaves a marker before the first pause and after the last
chunk. The test kills the whole process group once the marker says the
write has started, then asserts the write never finished."""
import contextlib
import glob
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist

pytestmark = pytest.mark.skipif(not osp.isdir('/proc'),
                                reason='finds the processes to kill in /proc')

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.runtime.checkpoint import verify_checkpoint

from helpers import training as rel  # noqa: E402

HERE = osp.dirname(osp.abspath(__file__))
MAX_ITERS, INTERVAL = 6, 2
KILL_AT_SAVE = 2  # the write of iter_4.pth


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env(repo_root, marker=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('PAD_TEST_SLOW_SAVE')}
    env['PYTHONPATH'] = os.pathsep.join(
        [repo_root, HERE, env.get('PYTHONPATH', '')])
    env['OMP_NUM_THREADS'] = '1'
    env['PORT'] = str(_free_port())
    if marker is not None:
        env.update(PAD_TEST_SLOW_SAVE=str(marker),
                   PAD_TEST_SLOW_SAVE_AT=str(KILL_AT_SAVE),
                   PAD_TEST_SLOW_SAVE_CHUNKS='40',
                   PAD_TEST_SLOW_SAVE_DELAY='0.25')
    return env


def _config(repo_root, tmp_path, work) -> str:
    from pad_mm.apis.runner import add_default_pad_hooks
    cfg = rel.tiny_demo_cfg(repo_root, tmp_path / work, tmp_path / 'data',
                            max_iters=MAX_ITERS, slim=True, size=32,
                            batch_size=2, flip=True)
    cfg.default_hooks.checkpoint.interval = INTERVAL
    # the previous checkpoint must survive the killed write of the next
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    cfg.randomness = dict(seed=0)
    # mmseg's tools/train.py does not add pad_mm's default hooks
    add_default_pad_hooks(cfg)
    cfg.custom_imports = dict(imports=['pad_mm', 'ckpt_kill_helpers'],
                              allow_failed_imports=False)
    path = tmp_path / f'{work}.py'
    cfg.dump(str(path))
    return str(path)


def _command(repo_root, cfg_file, distributed, tool='pad_mm'):
    if distributed:
        return ['bash', osp.join(repo_root, 'tools', 'dist_train.sh'),
                cfg_file, '2']
    if tool == 'mmseg':
        import mmseg
        script = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools',
                          'train.py')
    else:
        script = osp.join(repo_root, 'tools', 'train.py')
    return [sys.executable, script, cfg_file]


def _unreadable(work_dir):
    bad = []
    for path in glob.glob(osp.join(str(work_dir), '*.pth')):
        try:
            torch.load(path, map_location='cpu', weights_only=False)
        except Exception as exc:  # noqa: BLE001
            bad.append(f'{path}: {exc}')
    return bad


def _process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc). torchrun starts its
    workers in sessions of their own, so killing the launcher's process
    group does not reach them."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(')', 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def _kill_tree(pid: int) -> None:
    """SIGKILL a job at once, like a pre-empted node: the launcher and
    every process it started."""
    for p in _process_tree(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


def _kill_mid_write(cmd, env, cwd, marker, timeout=240):
    """Start ``cmd``, SIGKILL its process group while the slowed write of
    save number KILL_AT_SAVE is under way; returns the marker's words."""
    log = open(osp.join(cwd, 'killed_run.log'), 'w+')
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    start = None
    try:
        while time.monotonic() < deadline:
            if osp.exists(marker):
                lines = open(marker).read().splitlines()
                start = next((ln.split() for ln in lines
                              if ln.startswith(f'start {KILL_AT_SAVE} ')),
                             None)
                if start is not None:
                    break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # a few chunks into the write
    finally:
        _kill_tree(proc.pid)
        proc.wait(timeout=60)
        log.seek(0)
        out = log.read()
        log.close()
    assert start is not None, f'the write never started:\n{out[-4000:]}'
    assert proc.returncode == -signal.SIGKILL, out[-4000:]
    return start, open(marker).read().splitlines()


def _run(cmd, env, cwd, timeout=300):
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True,
                         text=True, timeout=timeout)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    return log


def _kill_and_resume(repo_root, tmp_path, distributed):
    cwd = str(tmp_path)
    ref_cfg = _config(repo_root, tmp_path, 'ref')
    kill_cfg = _config(repo_root, tmp_path, 'killed')
    work = tmp_path / 'killed'
    marker = tmp_path / 'marker.txt'
    # the uninterrupted reference runs at the same time as the killed run
    ref = subprocess.Popen(
        _command(repo_root, ref_cfg, distributed), env=_env(repo_root),
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        tool = 'pad_mm'
        if not distributed:
            import mmseg
            if osp.isfile(osp.join(osp.dirname(mmseg.__file__), '.mim',
                                   'tools', 'train.py')):
                tool = 'mmseg'
        start, lines = _kill_mid_write(
            _command(repo_root, kill_cfg, distributed, tool),
            _env(repo_root, marker), cwd, str(marker))
    finally:
        ref_out = ref.communicate(timeout=300)[0]
    assert ref.returncode == 0, ref_out[-4000:]

    # --- killed in the middle of writing iter_4.pth
    _, n, pid, total, written = start
    assert f'done {KILL_AT_SAVE}' not in lines, lines  # never finished
    assert osp.dirname(written) == str(work)
    assert osp.basename(written).startswith('.iter_4.pth.')
    assert written.endswith('.tmp')
    assert 0 < osp.getsize(written) < int(total)  # the torn temporary file
    assert not (work / 'iter_4.pth').exists()
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    verify_checkpoint(str(work / 'iter_2.pth'))
    assert _unreadable(work) == []

    # --- resume: continues from iter_2 and ends where the reference ends
    resume = _command(repo_root, kill_cfg, distributed) + ['--resume']
    log = _run(resume, _env(repo_root), cwd)
    assert f'Auto resumed from the latest checkpoint {work}/iter_2.pth' \
        in log
    assert 'resume: removed 1 unfinished write(s)' in log
    assert osp.basename(written) in log
    assert [n for n in os.listdir(work) if n.endswith('.tmp')] == []
    assert _unreadable(work) == []
    full = rel.state_of(tmp_path / 'ref' / f'iter_{MAX_ITERS}.pth')
    resumed = rel.state_of(work / f'iter_{MAX_ITERS}.pth')
    assert resumed['meta']['iter'] == MAX_ITERS
    assert resumed['state_dict'].keys() == full['state_dict'].keys()
    for key, value in full['state_dict'].items():
        assert torch.equal(value, resumed['state_dict'][key]), key
    for a, b in zip(full['optimizer']['state'].values(),
                    resumed['optimizer']['state'].values()):
        assert torch.equal(a['exp_avg'], b['exp_avg'])
        assert torch.equal(a['exp_avg_sq'], b['exp_avg_sq'])
    # max_keep_ckpts=1: only the last checkpoint is left
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == \
        [f'iter_{MAX_ITERS}.pth']


def test_kill_during_checkpoint_write_and_resume(repo_root, tmp_path):
    _kill_and_resume(repo_root, tmp_path, distributed=False)


@pytest.mark.skipif(not dist.is_gloo_available(),
                    reason='needs the gloo backend')
def test_distributed_kill_during_checkpoint_write_and_resume(
        repo_root, tmp_path):
    _kill_and_resume(repo_root, tmp_path, distributed=True)
