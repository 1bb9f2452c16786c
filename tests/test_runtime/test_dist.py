"""Distributed training on the CPU (gloo): tools/dist_train.sh with 2
processes equals 1 process with the same global batch; SyncBN becomes
CPUSyncBN; a gated chain trains under DDP without unused-parameter
errors. (The nccl path needs GPUs and is not covered here.)"""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.apis.runner import apply_cpu_distributed
from pad_mm.runtime.sync_bn import CPUSyncBatchNorm

from helpers.training import state_of, sync_bn_worker, tiny_demo_cfg

STEPS = 3

pytestmark = pytest.mark.skipif(not dist.is_gloo_available(),
                                reason='needs the gloo backend')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env(repo_root):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [repo_root, osp.join(repo_root, 'tests'),
         env.get('PYTHONPATH', '')])
    env['OMP_NUM_THREADS'] = '1'
    env['PORT'] = str(_free_port())
    return env


# --------------------------------------------------------- CPUSyncBN unit
def test_cpu_sync_bn_equals_full_batch_bn(tmp_path):
    torch.manual_seed(1)
    x = torch.randn(4, 3, 5, 5) * 3 + 1
    grad_out = torch.randn(4, 3, 5, 5)
    ctx = mp.get_context('spawn')
    q = ctx.Queue()
    procs = [ctx.Process(target=sync_bn_worker,
                         args=(r, 2, str(tmp_path / 'init'), x, grad_out, q))
             for r in range(2)]
    for p in procs:
        p.start()
    results = sorted([q.get(timeout=90) for _ in procs], key=lambda r: r[0])
    results = [(r[0], *map(torch.from_numpy, r[1:])) for r in results]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    ref = nn.BatchNorm2d(3)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        ref.bias.copy_(torch.tensor([0.0, -1.0, 3.0]))
    xr = x.clone().requires_grad_(True)
    yr = ref(xr)
    yr.backward(grad_out)
    y = torch.cat([r[1] for r in results])
    gx = torch.cat([r[2] for r in results])
    torch.testing.assert_close(y, yr.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx, xr.grad, rtol=1e-4, atol=1e-5)
    # mean over ranks of the local weight grads = full-batch grad / 2 (DDP
    # averages; the full-batch loss is the sum over both halves)
    torch.testing.assert_close(results[0][3] * 2, ref.weight.grad,
                               rtol=1e-4, atol=1e-5)
    for r in results:
        torch.testing.assert_close(r[4], ref.running_mean)
        torch.testing.assert_close(r[5], ref.running_var)


def test_cpu_sync_bn_is_bn_outside_distributed():
    torch.manual_seed(0)
    bn, ref = CPUSyncBatchNorm(4), nn.BatchNorm2d(4)
    x = torch.randn(3, 4, 6, 6)
    torch.testing.assert_close(bn(x), ref(x))
    torch.testing.assert_close(bn.running_var, ref.running_var)
    # mmcv's build_norm_layer names it like BN (state-dict keys unchanged)
    from mmcv.cnn import build_norm_layer
    name, layer = build_norm_layer(dict(type='CPUSyncBN'), 4, postfix=1)
    assert name == 'bn1' and isinstance(layer, CPUSyncBatchNorm)
    assert set(layer.state_dict()) == set(ref.state_dict())


def test_apply_cpu_distributed_converts_sync_bn():
    from mmengine.config import Config
    cfg = Config(dict(
        launcher='pytorch', sync_bn='torch',
        model=dict(backbone=dict(norm_cfg=dict(type='SyncBN')),
                   head=dict(norm_cfg=dict(type='BN')))))
    if torch.cuda.is_available():
        pytest.skip('CPU-only conversion')
    assert apply_cpu_distributed(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert cfg.model.backbone.norm_cfg.type == 'CPUSyncBN'
    # sync_bn='torch' (convert every BN) -> CPUSyncBN in the config
    assert cfg.model.head.norm_cfg.type == 'CPUSyncBN'
    assert cfg.sync_bn is None


# ------------------------------------------------ 2 processes = 1 process
def _dist_cfg(repo_root, tmp_path, work, batch_size):
    cfg = tiny_demo_cfg(repo_root, tmp_path / work, tmp_path / 'data',
                        max_iters=STEPS, slim=True, batch_size=batch_size,
                        flip=False)
    sync_bn = dict(type='SyncBN', requires_grad=True)
    cfg.model.backbone.norm_cfg = sync_bn
    cfg.model.decode_head.norm_cfg = sync_bn
    cfg.model.auxiliary_head.norm_cfg = sync_bn
    # dropout, like the Gumbel noise below, is drawn per process
    cfg.model.decode_head.dropout_ratio = 0.0
    cfg.model.auxiliary_head.dropout_ratio = 0.0
    # a gated chain: its first layer computes W h with h = 0, so W gets a
    # zero (not a missing) gradient: DDP must not report unused parameters
    cfg.model.backbone.pad_cfg.aggregation = 'gated'
    cfg.custom_imports = dict(imports=['pad_mm', 'helpers.training'],
                              allow_failed_imports=False)
    cfg.custom_hooks = list(cfg.custom_hooks) + [
        dict(type='ZeroGumbelNoiseHook')]
    cfg.randomness = dict(seed=0)
    cfg.default_hooks.checkpoint.interval = STEPS
    path = tmp_path / f'{work}.py'
    cfg.dump(str(path))
    return str(path)


def test_two_process_training_equals_one_process(repo_root, tmp_path):
    env = _env(repo_root)
    one = _dist_cfg(repo_root, tmp_path, 'one', batch_size=4)
    two = _dist_cfg(repo_root, tmp_path, 'two', batch_size=2)
    out1 = subprocess.run(
        [sys.executable, osp.join(repo_root, 'tools', 'train.py'), one],
        env=env, capture_output=True, text=True, cwd=str(tmp_path),
        timeout=600)
    assert out1.returncode == 0, out1.stderr[-3000:]
    out2 = subprocess.run(
        ['bash', osp.join(repo_root, 'tools', 'dist_train.sh'), two, '2'],
        env=env, capture_output=True, text=True, cwd=str(tmp_path),
        timeout=600)
    log2 = out2.stdout + out2.stderr
    assert out2.returncode == 0, log2[-4000:]
    assert 'gloo' in log2 and 'CPUSyncBN' in log2
    assert 'unused parameters' not in log2.lower()
    a = state_of(tmp_path / 'one' / f'iter_{STEPS}.pth')['state_dict']
    b = state_of(tmp_path / 'two' / f'iter_{STEPS}.pth')['state_dict']
    assert a.keys() == b.keys()
    # Adam normalises each step to ~lr (2e-3 here): a wrong gradient sign
    # or scale shows as >= 1e-3; float reordering stays well below 1e-4
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-4,
                                   msg=key)
    # training did move the parameters, the PAD priors included
    prior = 'backbone.layer4.1.conv2.prior.input_weight'
    assert a[prior].abs().sum() > 0
    # the first gated layer's hidden weights saw h = 0: zero gradient,
    # so (zero-initialised, AdamW) they are still exactly zero
    first = 'backbone.layer4.0.conv1.prior.hidden_weight'
    assert torch.count_nonzero(a[first]) == 0
    assert torch.count_nonzero(b[first]) == 0
    # while later layers of the chain receive h and learn W
    assert torch.count_nonzero(
        a['backbone.layer4.0.conv2.prior.hidden_weight']) > 0
