"""--amp on the CPU: float16 (loss scaling) and bfloat16 train the demo for
1,000 iterations with finite loss, priors, probabilities and gradients;
Gumbel-Softmax is finite at every tau the annealing hook produces."""
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.engine.hooks.tau_hook import TAU_SCHEDULES, tau_at
from pad_mm.models import PADConv2d
from pad_mm.runtime.amp import CPUAmpOptimWrapper
from pad_mm.engine.hooks import PADNumericsHook
from pad_mm.apis.runner import apply_amp, build_runner
from pad_mm.ops import gumbel_softmax

from helpers.training import json_log_losses, state_of, tiny_demo_cfg

ITERS = 1000


# --------------------------------------------------------------- wrapper
def _wrapper(dtype, **kw):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(4, 1, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, CPUAmpOptimWrapper(dtype=dtype, optimizer=opt, **kw)


@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
def test_cpu_amp_wrapper_autocasts(dtype):
    model, wrapper = _wrapper(dtype)
    with wrapper.optim_context(model):
        y = model(torch.randn(2, 2, 5, 5))
    assert y.dtype == getattr(torch, dtype)
    assert wrapper.scaling == (dtype == 'float16')


def test_cpu_amp_wrapper_skips_overflow_and_rescales():
    model, wrapper = _wrapper('float16')
    scale0 = wrapper.loss_scaler.get_scale()
    assert scale0 == 2.0**16
    before = [p.detach().clone() for p in model.parameters()]
    with wrapper.optim_context(model):
        loss = model(torch.randn(2, 2, 5, 5)).float().sum() * 1e35
    wrapper.update_params(loss)  # scaled grads overflow
    assert wrapper.last_step_skipped and wrapper.skipped_steps == 1
    assert wrapper.loss_scaler.get_scale() == scale0 / 2
    for a, p in zip(before, model.parameters()):
        assert torch.equal(a, p)  # skipped: nothing changed
    with wrapper.optim_context(model):
        loss = model(torch.randn(2, 2, 5, 5)).float().pow(2).mean()
    wrapper.update_params(loss)
    assert not wrapper.last_step_skipped and wrapper.skipped_steps == 1
    assert any(not torch.equal(a, p)
               for a, p in zip(before, model.parameters()))
    state = wrapper.state_dict()
    assert state['loss_scaler']['scale'] == scale0 / 2
    _, fresh = _wrapper('float16')
    fresh.load_state_dict(state)
    assert fresh.loss_scaler.get_scale() == scale0 / 2


@pytest.mark.parametrize('kwargs,match', [
    (dict(dtype='float32'), 'dtype'),
    (dict(dtype='float16', loss_scale=-1.0), 'loss_scale'),
    (dict(dtype='float16', loss_scale='static'), 'loss_scale'),
])
def test_cpu_amp_wrapper_bad_args(kwargs, match):
    opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match=match):
        CPUAmpOptimWrapper(optimizer=opt, **kwargs)


def test_apply_amp_picks_the_wrapper_for_the_machine():
    from mmengine.config import Config
    for dtype in ('float16', 'bfloat16'):
        cfg = Config(dict(optim_wrapper=dict(
            type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))))
        apply_amp(cfg, dtype)
        want = 'AmpOptimWrapper' if torch.cuda.is_available() else \
            'CPUAmpOptimWrapper'
        assert cfg.optim_wrapper.type == want
        assert cfg.optim_wrapper.dtype == dtype
        assert ('loss_scale' in cfg.optim_wrapper) == (dtype == 'float16')


# ----------------------------------------------------------- Gumbel / tau
def _hook_taus():
    """tau of every iteration of every schedule, for the demo's setting and
    for extreme (but accepted) start/end values."""
    taus = set()
    for schedule in TAU_SCHEDULES:
        for start, end in ((1.0, 0.2), (10.0, 1e-4), (1e-4, 10.0),
                           (1e3, 1e-12), (5.0, 5.0)):
            for it in list(range(0, 1001, 7)) + [1000]:
                taus.add(tau_at(it, schedule, start, end, 1000))
    return sorted(taus)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16,
                                   torch.bfloat16])
def test_gumbel_softmax_finite_at_every_hook_tau(dtype):
    taus = _hook_taus()
    assert min(taus) <= 1e-12 and max(taus) >= 1e3
    big = 6e4 if dtype == torch.float16 else 1e4
    torch.manual_seed(0)
    base = torch.randn(2, 3, 4, 4) * 5
    base[0, 0] = big  # extreme priors, one sign each
    base[0, 1] = -big
    logits = base.to(dtype).requires_grad_(True)
    for tau in taus:
        for hard in (False, True):
            probs = gumbel_softmax(logits, tau, hard=hard)
            assert probs.dtype == dtype
            assert torch.isfinite(probs).all(), (tau, hard)
            assert (probs >= 0).all() and (probs <= 1).all()
            torch.testing.assert_close(
                probs.float().sum(1), torch.ones(2, 4, 4),
                atol=1e-2, rtol=0)
            grad, = torch.autograd.grad(
                (probs.float() * torch.arange(3.0).view(1, 3, 1, 1)).sum(),
                logits)
            assert torch.isfinite(grad).all(), (tau, hard)
        soft = gumbel_softmax(logits, tau, noise=False)
        assert torch.isfinite(soft).all()


# ------------------------------------------------------- short, in-process
@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
def test_amp_run_computes_priors_in_low_precision(repo_root, tmp_path, dtype):
    cfg = tiny_demo_cfg(repo_root, tmp_path / 'w', tmp_path / 'data',
                        max_iters=2, slim=True, size=16)
    apply_amp(cfg, dtype)
    cfg.custom_hooks = list(cfg.custom_hooks) + [dict(type='PADNumericsHook')]
    runner = build_runner(cfg)
    seen = []

    def record(mod, inp, out):
        if mod.training:
            seen.append((inp[0].dtype, inp[1].dtype))

    for m in runner.model.modules():
        if isinstance(m, PADConv2d) and m.adaptive:
            m.probe.register_forward_hook(record)
    runner.train()
    # 2 training iterations x 4 PAD layers (validation runs in float32)
    assert len(seen) == 8 and set(seen) == {(getattr(torch, dtype),) * 2}
    hook = next(h for h in runner.hooks if isinstance(h, PADNumericsHook))
    assert hook.checked_iters == 2 and hook.checked_pad_layers == 4


def test_numerics_hook_raises_on_nan(repo_root, tmp_path):
    cfg = tiny_demo_cfg(repo_root, tmp_path / 'w', tmp_path / 'data',
                        max_iters=2, slim=True, size=16)
    cfg.custom_hooks = list(cfg.custom_hooks) + [dict(type='PADNumericsHook')]
    runner = build_runner(cfg)
    from mmengine.hooks import Hook

    class Poison(Hook):  # after init_weights, before the 2nd iteration

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if batch_idx == 1:
                with torch.no_grad():
                    runner.model.backbone.layer4[1].conv2.prior \
                        .input_bias[0] = float('nan')

    runner.register_hook(Poison(), priority='LOWEST')
    with pytest.raises(FloatingPointError,
                       match=r"iteration 2: .*layer4\.1\.conv2"):
        runner.train()


# --------------------------------------------------- 1,000 iterations each
def _amp_cfg_file(repo_root, tmp_path, dtype):
    cfg = tiny_demo_cfg(repo_root, tmp_path / dtype, tmp_path / 'data',
                        max_iters=ITERS, slim=True, size=16, validate=True)
    cfg.default_hooks.logger.interval = 10
    cfg.custom_hooks = list(cfg.custom_hooks) + [
        dict(type='PADNumericsHook', max_skipped_steps=30)]
    path = tmp_path / f'{dtype}.py'
    cfg.dump(str(path))
    return str(path)


def test_amp_trains_demo_1000_iterations(repo_root, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join([repo_root,
                                         env.get('PYTHONPATH', '')])
    procs = {}
    # data set generated once, before the two runs start
    from pad_mm.datasets import ensure_textures_dataset
    ensure_textures_dataset(str(tmp_path / 'data'), seed=1, num_train=8,
                            num_val=2, size=16)
    for dtype in ('float16', 'bfloat16'):  # in parallel, one core each
        cmd = [sys.executable, osp.join(repo_root, 'tools', 'train.py'),
               _amp_cfg_file(repo_root, tmp_path, dtype), '--amp',
               '--amp-dtype', dtype]
        procs[dtype] = subprocess.Popen(
            cmd, env=env, cwd=str(tmp_path), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
    logs = {d: p.communicate(timeout=900)[0] for d, p in procs.items()}
    for dtype, p in procs.items():
        assert p.returncode == 0, logs[dtype][-4000:]
        assert 'CPUAmpOptimWrapper' in logs[dtype] or \
            torch.cuda.is_available()
        records = json_log_losses(tmp_path / dtype)
        assert records[-1]['iter'] == ITERS
        assert {r['iter'] for r in records} >= set(range(10, ITERS + 1, 10))
        losses = [r['loss'] for r in records]
        assert all(math.isfinite(v) for v in losses)
        # it trains: the loss goes down
        first = sum(losses[:5]) / 5
        last = sum(losses[-5:]) / 5
        assert last < first, (dtype, first, last)
        skipped = records[-1]['amp_skipped_steps']
        if dtype == 'bfloat16':
            assert skipped == 0  # no scaling, every step applied
        else:
            assert skipped <= 30
        ckpt = state_of(tmp_path / dtype / f'iter_{ITERS}.pth')
        for key, value in ckpt['state_dict'].items():
            if value.is_floating_point():
                assert torch.isfinite(value).all(), key
        if dtype == 'float16':
            scale = ckpt['optimizer']['loss_scaler']['scale']
            assert 1.0 <= scale <= 2.0**16
