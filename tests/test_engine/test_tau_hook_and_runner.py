"""tau schedules and hook; config tools; a Runner train/val/resume trip;
mmseg's APIs on a PAD model."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import pad_mm.cls  # noqa: F401  (registers pad_mm for mmpretrain)
import pad_mm.seg  # noqa: F401  (and for mmseg)
from pad_mm.engine import PADTauHook, tau_at
from pad_mm.models import PADConv2d
from pad_mm.registry import task_of
from pad_mm.apis.runner import (apply_amp, apply_cpu_distributed,
                                         revert_sync_bn_cfg)

from helpers.training import tiny_demo_cfg


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
    assert cfg.optim_wrapper.type == ('AmpOptimWrapper'
                                      if torch.cuda.is_available() else
                                      'CPUAmpOptimWrapper')
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    with pytest.raises(ValueError, match='amp-dtype'):
        apply_amp(cfg, 'float8')
    changed = apply_cpu_distributed(cfg)
    assert changed == (not torch.cuda.is_available())
    if changed:
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.model_wrapper_cfg.device_ids is None
        assert cfg.model.backbone.norm_cfg.type == 'CPUSyncBN'
        assert cfg.model.heads[0].norm_cfg.type == 'CPUSyncBN'
    assert revert_sync_bn_cfg([dict(type='SyncBN')]) == [dict(type='BN')]


def _tiny_demo_cfg(repo_root, work_dir, data_root, max_iters=2):
    """The demo on 4 generated 32 px images, validated at the end, a
    checkpoint every iteration."""
    return tiny_demo_cfg(repo_root, work_dir, data_root, max_iters=max_iters,
                         num_train=4, validate=True, checkpoint_interval=1)


def test_runner_train_val_resume_round_trip(repo_root, tmp_path):
    from pad_mm.apis.runner import build_runner
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


def test_mmseg_apis_with_recurrent_chain(repo_root, tmp_path):
    """Aggregation lives in the model: mmseg.apis.init_model and
    inference_model work outside the Runner, twice in a row."""
    import numpy as np
    from mmseg.apis import inference_model, init_model
    cfg = _tiny_demo_cfg(repo_root, tmp_path / 'w', tmp_path / 'data')
    cfg.model.backbone.pad_cfg = dict(
        layers=['layer4.*.conv1', 'layer4.*.conv2'], aggregation='recurrent')
    model = init_model(cfg, None, device='cpu')
    chain = model.backbone.layer4[0].conv1.chain
    assert chain.length == 4
    assert model.backbone.layer4[1].conv2.chain_index == 3
    img = np.random.RandomState(0).randint(0, 255, (40, 48, 3), np.uint8)
    a = inference_model(model, img).pred_sem_seg.data
    b = inference_model(model, img).pred_sem_seg.data
    assert a.shape == (1, 40, 48)
    assert torch.equal(a, b)
    assert chain.pending() is None
