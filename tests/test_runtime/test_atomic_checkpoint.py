"""Atomic checkpoint writes, verified resume and max_keep_ckpts
(pad_mm.runtime.checkpoint): torn checkpoints (truncated, zero bytes,
random bytes, another config's, a changed byte) are refused with one clear
line and auto-resume falls back to the previous one; a full disk keeps the
previous checkpoint and last_checkpoint."""
import errno
import glob
import logging
import os
import os.path as osp
import shutil

import pytest
import torch

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.runtime import checkpoint as rc

HERE = osp.dirname(osp.abspath(__file__))


from helpers import training as rel  # noqa: E402
from helpers.tools import load_tool  # noqa: E402


def _train_tool(repo_root):
    return load_tool(repo_root, 'train.py')


def _cfg(repo_root, tmp, work, max_iters=4, interval=2, keep=3,
         head_channels=16):
    from pad_mm.apis.runner import add_default_pad_hooks
    cfg = rel.tiny_demo_cfg(repo_root, tmp / work, tmp / 'data',
                            max_iters=max_iters, slim=True, size=32)
    cfg.model.decode_head.channels = head_channels
    cfg.model.auxiliary_head.channels = head_channels
    cfg.default_hooks.checkpoint.interval = interval
    cfg.default_hooks.checkpoint.max_keep_ckpts = keep
    cfg.randomness = dict(seed=0)
    add_default_pad_hooks(cfg)
    return cfg


def _train(cfg):
    from pad_mm.apis.runner import build_runner
    runner = build_runner(cfg)
    runner.train()
    return runner


def _log_text(work_dir) -> str:
    files = sorted(glob.glob(osp.join(str(work_dir), '*', '*.log')))
    assert files, f'no log under {work_dir}'
    return open(files[-1]).read()


def _tmp_files(directory):
    return [n for n in os.listdir(directory) if n.endswith('.tmp')]


# ------------------------------------------------------------ unit level
def test_patches_are_applied_where_mmengine_calls_them():
    import mmengine.runner as runner_pkg
    import mmengine.runner.checkpoint as ckpt
    import mmengine.runner.runner as runner_mod
    from mmengine.hooks import CheckpointHook
    from mmengine.runner import Runner
    for fn in (ckpt.save_checkpoint, runner_pkg.save_checkpoint,
               runner_mod.save_checkpoint,
               CheckpointHook._save_checkpoint_with_step,
               Runner.load_or_resume):
        assert getattr(fn, '_pad_mm_patched', False), fn


def test_atomic_write_failure_keeps_old_file(tmp_path):
    path = tmp_path / 'iter_2.pth'
    rc.atomic_write_text(str(path), 'old')

    def fails(f):
        f.write(b'partial new content')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as info:
        rc.atomic_write(str(path), fails)
    assert info.value.errno == errno.ENOSPC
    assert path.read_text() == 'old'
    assert _tmp_files(tmp_path) == []

    def interrupted(f):
        f.write(b'x')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rc.atomic_write(str(path), interrupted)
    assert path.read_text() == 'old' and _tmp_files(tmp_path) == []


def test_save_writes_checksum_and_temp_file_in_same_dir(tmp_path,
                                                        monkeypatch):
    from mmengine.runner.checkpoint import save_checkpoint
    seen = []
    real_save = torch.save

    def spy(obj, f, *a, **k):
        seen.append(f.name)
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, 'save', spy)
    ckpt = {'meta': {'epoch': 0, 'iter': 1}, 'state_dict': {
        'w': torch.arange(6.)}, 'optimizer': {}, 'message_hub': {}}
    path = tmp_path / 'iter_1.pth'
    save_checkpoint(ckpt, str(path))
    # written through a temporary file next to it, then moved into place
    assert len(seen) == 1
    assert osp.dirname(seen[0]) == str(tmp_path)
    assert osp.basename(seen[0]).startswith('.iter_1.pth.')
    assert seen[0].endswith('.tmp') and not osp.exists(seen[0])
    digest, name = (tmp_path / 'iter_1.pth.sha256').read_text().split()
    assert name == 'iter_1.pth'
    import hashlib
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    rc.verify_checkpoint(str(path))
    assert torch.equal(torch.load(path, weights_only=False)['state_dict']
                       ['w'], torch.arange(6.))


# --------------------------------------------------- torn checkpoints
@pytest.fixture(scope='module')
def trained(repo_root, tmp_path_factory):
    """A finished 4-iteration run (iter_2, iter_4) and a 1-iteration run of
    another config (narrower decode heads: other shapes)."""
    tmp = tmp_path_factory.mktemp('torn')
    _train(_cfg(repo_root, tmp, 'run'))
    _train(_cfg(repo_root, tmp, 'other', max_iters=1, interval=1,
                head_channels=8))
    return tmp


def _copy_run(trained, tmp_path):
    work = tmp_path / 'work'
    shutil.copytree(trained / 'run', work)
    # last_checkpoint holds the absolute path of the original run
    (work / 'last_checkpoint').write_text(str(work / 'iter_4.pth'))
    return work


def _damage(kind, path, trained):
    data = path.read_bytes()
    if kind == 'truncated':
        path.write_bytes(data[:len(data) // 2])
    elif kind == 'zero_bytes':
        path.write_bytes(b'')
    elif kind == 'random_bytes':
        path.write_bytes(
            torch.randint(0, 256, (4096, ), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
            .numpy().tobytes())
    elif kind == 'other_config':
        shutil.copy(trained / 'other' / 'iter_1.pth', path)
        os.unlink(str(path) + rc.CHECKSUM_SUFFIX)
    elif kind == 'changed_byte':  # still a loadable zip: the hash sees it
        i = len(data) // 2
        path.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])


REASONS = {
    'truncated': 'unreadable, truncated or corrupt',
    'zero_bytes': 'empty file (0 bytes)',
    'random_bytes': 'not a PyTorch checkpoint',
    'other_config': 'does not fit the model',
    'changed_byte': 'differs from the sha256 recorded',
}


@pytest.mark.parametrize('kind', sorted(REASONS))
def test_auto_resume_skips_torn_newest_checkpoint(repo_root, trained,
                                                  tmp_path, kind):
    work = _copy_run(trained, tmp_path)
    _damage(kind, work / 'iter_4.pth', trained)
    with pytest.raises(rc.CheckpointError) as info:
        rc.verify_checkpoint(str(work / 'iter_4.pth'))  # no model needed
        if kind == 'other_config':  # loads: the model's shapes tell
            shapes = {k: tuple(v.shape) for k, v in torch.load(
                work / 'iter_2.pth', weights_only=False)['state_dict']
                .items()}
            rc.verify_checkpoint(str(work / 'iter_4.pth'), shapes)
    assert REASONS[kind] in str(info.value)
    assert '\n' not in str(info.value)

    cfg = _cfg(repo_root, tmp_path, 'work', max_iters=4)
    cfg.resume = True
    from pad_mm.apis.runner import build_runner
    runner = build_runner(cfg)
    if kind == 'truncated':  # the whole run: it goes on to the end
        runner.train()
        assert runner.iter == 4
        # it rewrote iter_4.pth, whole
        rc.verify_checkpoint(str(work / 'iter_4.pth'))
        assert torch.load(work / 'iter_4.pth',
                          weights_only=False)['meta']['iter'] == 4
    else:
        runner.load_or_resume()
        assert runner.iter == 2
    log = _log_text(work)
    lines = [ln for ln in log.splitlines() if 'is not usable' in ln]
    assert len(lines) == 1, lines
    assert f'{work / "iter_4.pth"}' in lines[0]
    assert REASONS[kind] in lines[0]
    assert f'resuming from {work / "iter_2.pth"}' in lines[0]
    assert 'resumed epoch: 0, iter: 2' in log


def test_no_valid_checkpoint_lists_what_was_tried(repo_root, trained,
                                                  tmp_path):
    work = _copy_run(trained, tmp_path)
    _damage('truncated', work / 'iter_4.pth', trained)
    _damage('zero_bytes', work / 'iter_2.pth', trained)
    cfg = _cfg(repo_root, tmp_path, 'work')
    cfg.resume = True
    with pytest.raises(rc.CheckpointError) as info:
        _train(cfg)
    msg = str(info.value)
    assert '\n' not in msg
    assert msg.startswith(f'resume: no valid checkpoint in {work}; tried 2')
    assert f'{work / "iter_4.pth"} (unreadable, truncated' in msg
    assert f'{work / "iter_2.pth"} (empty file (0 bytes)' in msg


def test_explicit_resume_of_torn_file_is_one_line_error(repo_root, trained,
                                                        tmp_path):
    work = _copy_run(trained, tmp_path)
    _damage('truncated', work / 'iter_4.pth', trained)
    cfg = _cfg(repo_root, tmp_path, 'work')
    cfg_file = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_file))
    train = _train_tool(repo_root)
    with pytest.raises(SystemExit) as info:
        train.main([str(cfg_file), '--resume', str(work / 'iter_4.pth'),
                    '--no-preflight'])
    assert info.value.code == 1
    log = _log_text(work)
    lines = [ln for ln in log.splitlines() if 'cannot resume from' in ln]
    assert len(lines) == 1
    assert f'cannot resume from {work / "iter_4.pth"}: unreadable, ' \
        'truncated or corrupt' in lines[0]
    assert 'Traceback' not in log
    # a valid explicit checkpoint still resumes
    cfg.resume = True
    cfg.load_from = str(work / 'iter_2.pth')
    assert _train(cfg).iter == 4


# ------------------------------------------------------------- disk full
def test_disk_full_keeps_previous_checkpoint(repo_root, tmp_path,
                                             monkeypatch):
    """max_keep_ckpts=1: mmengine would delete iter_2.pth before writing
    iter_4.pth; here the write of iter_4.pth fails with ENOSPC halfway."""
    real_save = torch.save
    calls = []

    def disk_fills_up(obj, f, *a, **k):
        calls.append(f.name)
        if len(calls) < 2:
            return real_save(obj, f, *a, **k)
        f.write(b'PK\x03\x04' + b'\0' * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, 'save', disk_fills_up)
    work = tmp_path / 'work'
    cfg = _cfg(repo_root, tmp_path, 'work', keep=1)
    cfg_file = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_file))
    with pytest.raises(SystemExit) as info:
        _train_tool(repo_root).main([str(cfg_file), '--no-preflight'])
    assert info.value.code == 1
    assert len(calls) == 2
    line = [ln for ln in _log_text(work).splitlines() if 'error:' in ln]
    assert len(line) == 1
    assert f'could not save checkpoint {work / "iter_4.pth"}: [Errno ' \
        f'{errno.ENOSPC}] No space left on device' in line[0]
    assert 'the previous checkpoint and last_checkpoint are unchanged' \
        in line[0]
    # the previous checkpoint is whole and still named by last_checkpoint
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    rc.verify_checkpoint(str(work / 'iter_2.pth'))
    assert torch.load(work / 'iter_2.pth',
                      weights_only=False)['meta']['iter'] == 2
    assert not (work / 'iter_4.pth').exists()
    assert _tmp_files(work) == []


def test_max_keep_ckpts_deletes_only_after_new_one_is_complete(
        repo_root, tmp_path, monkeypatch):
    """At each write, the previous checkpoint is still on disk (mmengine
    0.10.7 removes it first)."""
    real_save = torch.save
    present = []
    work = tmp_path / 'work'

    def spy(obj, f, *a, **k):
        present.append(sorted(n for n in os.listdir(work)
                              if n.endswith('.pth')))
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, 'save', spy)
    _train(_cfg(repo_root, tmp_path, 'work', max_iters=3, interval=1,
                keep=1))
    assert present == [[], ['iter_1.pth'], ['iter_2.pth']]
    assert sorted(n for n in os.listdir(work) if '.pth' in n) == \
        ['iter_3.pth', 'iter_3.pth.sha256']
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_3.pth')


def test_logger_line_names_torn_file(tmp_path):
    """select_resume_checkpoint on its own: one warning line per unusable
    file, None for a work dir without checkpoints."""
    assert rc.select_resume_checkpoint(str(tmp_path)) is None
    good = {'meta': {'epoch': 0, 'iter': 1}, 'state_dict': {
        'w': torch.ones(2)}, 'optimizer': {}, 'message_hub': {}}
    rc.save_checkpoint_atomic(good, str(tmp_path / 'iter_1.pth'))
    (tmp_path / 'iter_3.pth').write_bytes(b'')
    logger = logging.getLogger('pad_mm_test_select')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    chosen = rc.select_resume_checkpoint(str(tmp_path), logger=logger)
    assert chosen == str(tmp_path / 'iter_1.pth')
    assert [r.levelno for r in records] == [logging.WARNING]
    assert str(tmp_path / 'iter_3.pth') in records[0].getMessage()
