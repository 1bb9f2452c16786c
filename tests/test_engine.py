"""tau schedules and hook; config tools; a Runner train/val/resume trip."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import pad_mm  # noqa: F401
from pad_mm.engine import PADTauHook, tau_at
from pad_mm.engine.runner_utils import (apply_amp, apply_cpu_distributed,
                                        revert_sync_bn_cfg, task_of)
from pad_mm.models import PADConv2d


def test_tau_schedules_values():
    assert tau_at(0, 'constant', 0.7, 0.1, 10) == 0.7
    assert tau_at(99, 'constant', 0.7, 0.1, 10) == 0.7
    assert tau_at(0, 'exp', 1.0, 0.01, 100) == pytest.approx(1.0)
    assert tau_at(50, 'exp', 1.0, 0.01, 100) == pytest.approx(0.1)
    assert tau_at(100, 'exp', 1.0, 0.01, 100) == pytest.approx(0.01)
    assert tau_at(500, 'exp', 1.0, 0.01, 100) == pytest.approx(0.01)
    assert tau_at(0, 'cosine', 2.0, 0.5, 10) == pytest.approx(2.0)
    assert tau_at(5, 'cosine', 2.0, 0.5, 10) == pytest.approx(1.25)
    assert tau_at(10, 'cosine', 2.0, 0.5, 10) == pytest.approx(0.5)
    assert tau_at(3, 'cosine', 2.0, 0.5, 10) == pytest.approx(
        0.5 + 1.5 * (1 + math.cos(math.pi * 0.3)) / 2)
    with pytest.raises(ValueError, match='schedule'):
        tau_at(0, 'linear', 1.0, 0.1, 10)


@pytest.mark.parametrize('kwargs,match', [
    (dict(schedule='step'), 'schedule'),
    (dict(tau_start=0), 'tau_start'),
    (dict(tau_end=-1.0), 'tau_end'),
    (dict(tau_end=float('nan')), 'tau_end'),
    (dict(anneal_iters=0), 'anneal_iters'),
])
def test_tau_hook_bad_args(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        PADTauHook(**kwargs)


def test_task_and_amp_and_cpu_dist_cfg():
    cfg = Config(dict(default_scope='mmseg',
                      optim_wrapper=dict(type='OptimWrapper',
                                         optimizer=dict(type='SGD', lr=0.1)),
                      launcher='pytorch',
                      model=dict(backbone=dict(norm_cfg=dict(type='SyncBN')),
                                 heads=[dict(norm_cfg=dict(type='SyncBN'))])))
    assert task_of(cfg) == 'seg'
    assert task_of(Config(dict(default_scope='mmpretrain'))) == 'cls'
    with pytest.raises(ValueError, match='default_scope'):
        task_of(Config(dict(default_scope='mmdet')))
    apply_amp(cfg, 'float16')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    with pytest.raises(ValueError, match='amp-dtype'):
        apply_amp(cfg, 'float8')
    changed = apply_cpu_distributed(cfg)
    assert changed == (not torch.cuda.is_available())
    if changed:
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.model_wrapper_cfg.device_ids is None
        assert cfg.model.backbone.norm_cfg.type == 'BN'
        assert cfg.model.heads[0].norm_cfg.type == 'BN'
    assert revert_sync_bn_cfg([dict(type='SyncBN')]) == [dict(type='BN')]


def _tiny_demo_cfg(repo_root, work_dir, data_root, max_iters=2):
    cfg = Config.fromfile(
        osp.join(repo_root, 'configs/demo/pad_deeplabv3plus_r18_textures.py'))
    gen = dict(seed=1, num_train=4, num_val=2, size=32)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(data_root)
        cfg[loader].dataset.generate = gen
    cfg.train_dataloader.batch_size = 2
    cfg.model.data_preprocessor.size = (32, 32)
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters
    cfg.param_scheduler[0].end = max_iters
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.checkpoint.max_keep_ckpts = 3
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    return cfg


def test_runner_train_val_resume_round_trip(repo_root, tmp_path):
    from pad_mm.engine.runner_utils import build_runner
    cfg = _tiny_demo_cfg(repo_root, tmp_path / 'a', tmp_path / 'data')
    runner = build_runner(cfg)
    runner.train()
    assert runner.iter == 2
    assert osp.isfile(tmp_path / 'a' / 'iter_1.pth')
    assert osp.isfile(tmp_path / 'a' / 'iter_2.pth')
    metrics = runner.message_hub.log_scalars
    assert 'val/mIoU' in metrics or 'mIoU' in {
        k.split('/')[-1] for k in metrics}
    pads = [m for m in runner.model.modules()
            if isinstance(m, PADConv2d) and m.adaptive]
    assert len(pads) == 4
    # tau of iteration index 1 of an exp schedule 1.0 -> 0.2 over 2 iters
    assert pads[0].tau == pytest.approx(1.0 * 0.2**0.5)
    assert runner.message_hub.get_scalar('train/tau').current() == \
        pytest.approx(0.2**0.5)
    # the generated data set is in mmseg's on-disk layout
    assert osp.isfile(tmp_path / 'data' / 'images' / 'train' / '000003.png')
    assert osp.isfile(tmp_path / 'data' / 'annotations' / 'val' /
                      '000001.png')

    ckpt = torch.load(tmp_path / 'a' / 'iter_1.pth', weights_only=False)
    assert ckpt['meta']['iter'] == 1
    assert any(k.endswith('prior.input_weight') for k in ckpt['state_dict'])

    # resume from iteration 1 in a new work dir (torch.load fix applied)
    cfg_b = _tiny_demo_cfg(repo_root, tmp_path / 'b', tmp_path / 'data')
    cfg_b.resume = True
    cfg_b.load_from = str(tmp_path / 'a' / 'iter_1.pth')
    runner_b = build_runner(cfg_b)
    runner_b.train()
    assert runner_b.iter == 2
    assert osp.isfile(tmp_path / 'b' / 'iter_2.pth')
    # exactly one iteration was run after resuming
    assert not osp.isfile(tmp_path / 'b' / 'iter_1.pth')
