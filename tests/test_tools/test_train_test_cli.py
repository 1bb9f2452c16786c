"""tools/train.py and tools/test.py end to end, and mmseg's own
tools/train.py on a pad_mm config."""
import os
import os.path as osp

import pytest
import torch

from helpers.training import tiny_demo_cfg


def _tiny_demo_cfg(repo_root, work_dir, data_root, max_iters=2):
    """The demo on 4 generated 32 px images, validated at the end, a
    checkpoint every iteration."""
    return tiny_demo_cfg(repo_root, work_dir, data_root, max_iters=max_iters,
                         num_train=4, validate=True, checkpoint_interval=1)


def test_upstream_mmseg_train_script_runs_config(repo_root, tmp_path):
    """mmseg's own tools/train.py runs a pad_mm config unchanged (the
    config's custom_imports registers pad_mm)."""
    import subprocess
    import sys

    import mmseg
    script = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools',
                      'train.py')
    if not osp.isfile(script):
        pytest.skip('this mmseg install does not ship tools/train.py')
    cfg = _tiny_demo_cfg(repo_root, tmp_path / 'w', tmp_path / 'data',
                         max_iters=1)
    cfg_file = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_file))
    # this checkout's pad_mm, whatever else is installed
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [repo_root, os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run(
        [sys.executable, script, str(cfg_file), '--work-dir',
         str(tmp_path / 'w')],
        capture_output=True, text=True, cwd=str(tmp_path), env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert osp.isfile(tmp_path / 'w' / 'iter_1.pth')
    ckpt = torch.load(tmp_path / 'w' / 'iter_1.pth', weights_only=False)
    assert any('prior.input_weight' in k for k in ckpt['state_dict'])


def test_tools_train_and_test_cli(repo_root, tmp_path):
    """tools/train.py then tools/test.py on its checkpoint: the same mIoU
    as the validation at the end of training."""
    import json
    import subprocess
    import sys
    cfg = _tiny_demo_cfg(repo_root, tmp_path / 'w', tmp_path / 'data',
                         max_iters=2)
    cfg_file = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_file))
    run = dict(capture_output=True, text=True, cwd=str(tmp_path))
    out = subprocess.run([
        sys.executable, osp.join(repo_root, 'tools', 'train.py'),
        str(cfg_file), '--work-dir', str(tmp_path / 'w')
    ], **run)
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = (tmp_path / 'w' / 'last_checkpoint').read_text().strip()
    out = subprocess.run([
        sys.executable, osp.join(repo_root, 'tools', 'test.py'),
        str(cfg_file), ckpt, '--work-dir', str(tmp_path / 't')
    ], **run)
    assert out.returncode == 0, out.stderr[-3000:]

    def last_miou(root):
        # training: <ts>/vis_data/scalars.json; testing: <ts>/<ts>.json
        logs = sorted(root.rglob('*.json'))
        for log in logs:
            for line in reversed(log.read_text().splitlines()):
                rec = json.loads(line)
                if 'mIoU' in rec:
                    return rec['mIoU']
        raise AssertionError(f'no mIoU logged under {root}')

    assert last_miou(tmp_path / 't') == last_miou(tmp_path / 'w')
    # --tta: the config's tta_pipeline / tta_model (flip TTA here)
    cfg.tta_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='TestTimeAug', transforms=[
            [dict(type='RandomFlip', prob=0.0, direction='horizontal'),
             dict(type='RandomFlip', prob=1.0, direction='horizontal')],
            [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]])
    ]
    cfg.dump(str(cfg_file))
    out = subprocess.run([
        sys.executable, osp.join(repo_root, 'tools', 'test.py'),
        str(cfg_file), ckpt, '--tta', '--work-dir', str(tmp_path / 'tta')
    ], **run)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 0 <= last_miou(tmp_path / 'tta') <= 100
    # bad CLI input is rejected with the field named
    out = subprocess.run([
        sys.executable, osp.join(repo_root, 'tools', 'test.py'),
        str(cfg_file), str(tmp_path / 'missing.pth')
    ], **run)
    assert out.returncode != 0 and 'checkpoint' in out.stderr
