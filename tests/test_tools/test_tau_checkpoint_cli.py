"""The trained tau reaches tools/test.py and init_model through the
checkpoint: soft eval after training gives the validation result."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from pad_mm.engine.hooks.tau_hook import tau_at


def _cfg(repo_root, work_dir, data_root):
    cfg = Config.fromfile(
        osp.join(repo_root, 'configs/demo/pad_deeplabv3plus_r18_textures.py'))
    gen = dict(seed=1, num_train=4, num_val=2, size=32)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(data_root)
        cfg[loader].dataset.generate = gen
    cfg.train_dataloader.batch_size = 2
    cfg.model.data_preprocessor.size = (32, 32)
    cfg.model.backbone.update(stem_channels=8, base_channels=8)
    cfg.model.decode_head.update(
        in_channels=64, channels=16, c1_in_channels=8, c1_channels=8)
    cfg.model.auxiliary_head.update(in_channels=32, channels=16)
    # soft eval reads tau; a small margin makes the result depend on it
    cfg.model.backbone.pad_cfg.update(eval_mode='soft', init_margin=0.2)
    cfg.custom_hooks = [dict(type='PADTauHook', schedule='exp',
                             tau_start=1.0, tau_end=0.05)]
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    cfg.param_scheduler[0].end = 2
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    return cfg


def _last_miou(root):
    for log in sorted(root.rglob('*.json')):
        for line in reversed(log.read_text().splitlines()):
            rec = json.loads(line)
            if 'mIoU' in rec:
                return rec['mIoU']
    raise AssertionError(f'no mIoU logged under {root}')


def test_trained_tau_reaches_test_py_and_init_model(repo_root, tmp_path):
    cfg = _cfg(repo_root, tmp_path / 'w', tmp_path / 'data')
    cfg_file = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_file))
    run = dict(capture_output=True, text=True, cwd=str(tmp_path))
    out = subprocess.run([
        sys.executable, osp.join(repo_root, 'tools', 'train.py'),
        str(cfg_file), '--work-dir', str(tmp_path / 'w')], **run)
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = (tmp_path / 'w' / 'last_checkpoint').read_text().strip()
    trained_tau = tau_at(1, 'exp', 1.0, 0.05, 2)  # of the last iteration
    state = torch.load(ckpt, map_location='cpu',
                       weights_only=False)['state_dict']
    taus = [float(v) for k, v in state.items() if k.endswith('.pad_tau')]
    assert len(taus) == 4
    assert taus == pytest.approx([trained_tau] * 4)

    # init_model (and the analysis tools built on it) use the trained tau
    from mmseg.apis import init_model

    from pad_mm.models import PADConv2d
    model = init_model(str(cfg_file), ckpt, device='cpu')
    pads = [m for m in model.modules() if isinstance(m, PADConv2d)]
    assert [m.tau for m in pads] == pytest.approx([trained_tau] * 4)
    # and tau matters for this model's soft output
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a = model.backbone(x)[-1]
        for m in pads:
            m.tau = 1.0
        b = model.backbone(x)[-1]
    assert not torch.allclose(a, b, rtol=1e-3, atol=1e-4)

    # tools/test.py reproduces the validation at the end of training
    out = subprocess.run([
        sys.executable, osp.join(repo_root, 'tools', 'test.py'),
        str(cfg_file), ckpt, '--work-dir', str(tmp_path / 't')], **run)
    assert out.returncode == 0, out.stderr[-3000:]
    assert _last_miou(tmp_path / 't') == _last_miou(tmp_path / 'w')
