"""Resume is bit-identical (RNG state included); deterministic runs give
identical logs."""

import pytest
import torch

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.models import PADConv2d
from pad_mm.apis.runner import add_default_pad_hooks, build_runner

from helpers.training import json_log_losses, state_of, tiny_demo_cfg

N = 3  # interrupt at N, compare at 2N


def _cfg(repo_root, tmp_path, work, rng_hook=True, seed=0):
    cfg = tiny_demo_cfg(repo_root, tmp_path / work, tmp_path / 'data',
                        max_iters=2 * N, slim=True, validate=False)
    # validation at N in the uninterrupted run only (a resumed run does
    # not repeat it): it must not shift the training random stream
    cfg.train_cfg.val_interval = N
    cfg.default_hooks.checkpoint.interval = N
    cfg.randomness = dict(seed=seed)
    if rng_hook:
        add_default_pad_hooks(cfg)
    return cfg


def _train(cfg):
    runner = build_runner(cfg)
    runner.train()
    return runner


def _taus(runner):
    return [m.tau for m in runner.model.modules()
            if isinstance(m, PADConv2d) and m.adaptive]


@pytest.fixture(scope='module')
def uninterrupted(repo_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('resume')
    runner = _train(_cfg(repo_root, tmp, 'full'))
    return tmp, runner, state_of(tmp / 'full' / f'iter_{2 * N}.pth')


def test_checkpoint_holds_rng_state(uninterrupted):
    tmp, _, _ = uninterrupted
    ckpt = state_of(tmp / 'full' / f'iter_{N}.pth')
    rng = ckpt['rng_state']
    assert set(rng) >= {'python', 'numpy', 'torch'}
    assert isinstance(rng['torch'], torch.Tensor)
    # the saved state is not the state right after seeding
    torch.manual_seed(0)
    assert not torch.equal(rng['torch'], torch.get_rng_state())


def test_resume_is_bit_identical(repo_root, uninterrupted):
    tmp, full_runner, full = uninterrupted
    cfg = _cfg(repo_root, tmp, 'resumed')
    cfg.resume = True
    cfg.load_from = str(tmp / 'full' / f'iter_{N}.pth')
    runner = _train(cfg)
    assert runner.iter == 2 * N
    resumed = state_of(tmp / 'resumed' / f'iter_{2 * N}.pth')
    assert resumed['state_dict'].keys() == full['state_dict'].keys()
    for key, value in full['state_dict'].items():
        assert torch.equal(value, resumed['state_dict'][key]), key
    # optimizer moments too
    for a, b in zip(full['optimizer']['state'].values(),
                    resumed['optimizer']['state'].values()):
        assert torch.equal(a['exp_avg'], b['exp_avg'])
    # tau schedule state: the same tau in every PAD layer at 2N
    assert _taus(runner) == _taus(full_runner)
    assert runner.message_hub.get_scalar('train/tau').current() == \
        full_runner.message_hub.get_scalar('train/tau').current()
    # and the same RNG stream afterwards
    assert torch.equal(resumed['rng_state']['torch'],
                       full['rng_state']['torch'])


def test_resume_without_rng_state_differs(repo_root, uninterrupted):
    """Control: without the saved RNG state (mmengine's default) the
    resumed run draws other Gumbel noise and ends elsewhere, so the
    bit-identity above is due to RNGStateHook."""
    tmp, _, full = uninterrupted
    cfg = _cfg(repo_root, tmp, 'no_rng', rng_hook=False)
    cfg.resume = True
    cfg.load_from = str(tmp / 'full' / f'iter_{N}.pth')
    _train(cfg)
    other = state_of(tmp / 'no_rng' / f'iter_{2 * N}.pth')
    differs = [k for k, v in full['state_dict'].items()
               if v.is_floating_point()
               and not torch.equal(v, other['state_dict'][k])]
    assert differs


def test_deterministic_runs_give_identical_logs(repo_root, tmp_path):
    losses = []
    previous = torch.are_deterministic_algorithms_enabled()
    try:
        for run, seed in (('a', 7), ('b', 7), ('c', 8)):
            cfg = _cfg(repo_root, tmp_path, run, seed=seed)
            cfg.randomness = dict(seed=seed, deterministic=True)
            cfg.train_cfg.max_iters = 4
            cfg.param_scheduler[0].end = 4
            cfg.train_cfg.val_interval = 5
            _train(cfg)
            assert torch.are_deterministic_algorithms_enabled()
            records = json_log_losses(tmp_path / run)
            losses.append([{k: v for k, v in r.items()
                            if k not in ('time', 'data_time', 'eta')}
                           for r in records])
    finally:
        torch.use_deterministic_algorithms(previous)
    assert len(losses[0]) == 4
    assert {'loss', 'decode.loss_ce', 'tau', 'lr'} <= set(losses[0][0])
    assert losses[0] == losses[1]
    # a different seed gives a different log (the comparison can fail)
    assert [r['loss'] for r in losses[0]] != [r['loss'] for r in losses[2]]
