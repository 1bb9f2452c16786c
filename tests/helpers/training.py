"""Training helpers of the runtime tests (tests/test_runtime/): the demo
config shrunk for the CPU, json-log and checkpoint readers, a CPUSyncBN
worker, and test-only hooks and backbones registered on import."""
from __future__ import annotations

import json
import os.path as osp

from mmengine.config import Config

from .configs import load_config

DEMO = 'configs/demo/pad_deeplabv3plus_r18_textures.py'


def tiny_demo_cfg(repo_root: str, work_dir, data_root, max_iters: int = 2,
                  size: int = 32, batch_size: int = 2, slim: bool = False,
                  num_train: int = 8, flip: bool = True,
                  validate: bool = False,
                  checkpoint_interval: int | None = None) -> Config:
    """The PAD demo config shrunk for CPU tests, optionally with a slim
    ResNet-18 (8-64 channels) for long runs."""
    cfg = load_config(osp.join(repo_root, DEMO))
    gen = dict(seed=1, num_train=num_train, num_val=2, size=size)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(data_root)
        cfg[loader].dataset.generate = gen
    if not flip:
        cfg.train_dataloader.dataset.pipeline = [
            t for t in cfg.train_dataloader.dataset.pipeline
            if t['type'] != 'RandomFlip'
        ]
    cfg.train_dataloader.batch_size = batch_size
    cfg.model.data_preprocessor.size = (size, size)
    if slim:
        cfg.model.backbone.update(stem_channels=8, base_channels=8)
        cfg.model.decode_head.update(
            in_channels=64, channels=16, c1_in_channels=8, c1_channels=8)
        cfg.model.auxiliary_head.update(in_channels=32, channels=16)
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters if validate else max_iters + 1
    cfg.param_scheduler[0].end = max_iters
    cfg.default_hooks.checkpoint.interval = checkpoint_interval or max_iters
    cfg.default_hooks.checkpoint.max_keep_ckpts = 3
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    # mmengine keeps loggers, message hubs and visualizers by name: give
    # every test run its own, so runs in one process do not share them
    name = unique_name()
    cfg.experiment_name = name
    cfg.visualizer.name = f'vis_{name}'
    return cfg


def json_log_losses(work_dir) -> list[dict]:
    """The training records (those with 'loss') of the run's json log."""
    import glob
    files = sorted(glob.glob(osp.join(str(work_dir), '*', 'vis_data',
                                      'scalars.json')))
    assert files, f'no json log under {work_dir}'
    records = []
    with open(files[-1]) as f:
        for line in f:
            rec = json.loads(line)
            if 'loss' in rec:
                records.append(rec)
    return records


def unique_name() -> str:
    """A name of its own for an experiment or visualizer instance."""
    import uuid
    return f'rel_{uuid.uuid4().hex[:12]}'


def state_of(path) -> dict:
    import torch
    return torch.load(path, map_location='cpu', weights_only=False)


def sync_bn_worker(rank, world, init_file, x, grad_out, out_q):
    """One rank of the CPUSyncBN test (spawned; must be importable)."""
    import torch
    import torch.distributed as dist

    from pad_mm.runtime.sync_bn import CPUSyncBatchNorm
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=world)
    torch.manual_seed(0)
    bn = CPUSyncBatchNorm(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        bn.bias.copy_(torch.tensor([0.0, -1.0, 3.0]))
    half = x.shape[0] // world
    xi = x[rank * half:(rank + 1) * half].clone().requires_grad_(True)
    y = bn(xi)
    y.backward(grad_out[rank * half:(rank + 1) * half])
    # DDP would average parameter gradients over ranks
    gw = bn.weight.grad.clone()
    dist.all_reduce(gw)
    # numpy copies travel by value: a shared tensor's file descriptor
    # could be gone once this process exits before the parent reads it
    out_q.put((rank, *(t.detach().numpy().copy() for t in (
        y, xi.grad, gw / world, bn.running_mean, bn.running_var))))
    dist.barrier()
    dist.destroy_process_group()


# ---------------------------------------------------------------------------
# Used inside training subprocesses via custom_imports=['helpers.training']
# (with tests/ on PYTHONPATH).
def _register_zero_noise_hook():
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS

    if HOOKS.get('ZeroGumbelNoiseHook') is not None:
        return

    @HOOKS.register_module()
    class ZeroGumbelNoiseHook(Hook):
        """Replace the Gumbel noise by zeros (test only).

        Gumbel noise is drawn per process, like dropout, so 2 processes with
        half batches draw different noise than 1 process with the whole
        batch. Comparing 1- and 2-process training therefore runs both
        noise-free; checks that the replacement is in effect."""

        def before_train(self, runner):
            import torch

            import pad_mm.ops.gumbel as gumbel
            gumbel.gumbel_noise = lambda shape, device=None, generator=None: \
                torch.zeros(shape, device=device, dtype=torch.float32)
            from pad_mm.ops import gumbel_softmax
            x = torch.randn(1, 3, 2, 2)
            assert torch.allclose(
                gumbel_softmax(x, 0.5, noise=True),
                torch.softmax(x / 0.5, dim=1)), 'noise not disabled'


try:
    _register_zero_noise_hook()
except ImportError:  # mmengine missing: plain helper use
    pass


def _register_test_backbones():
    """Tiny backbones whose convs cannot form a chain (test only)."""
    import torch.nn as nn
    from mmengine.registry import MODELS

    if MODELS.get('RelReversedNet') is not None:
        return

    @MODELS.register_module()
    class RelReversedNet(nn.Module):
        """``b`` is declared (module order) before ``a`` but runs after."""

        def __init__(self):
            super().__init__()
            self.b = nn.Conv2d(8, 8, 3, padding=1)
            self.a = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            return (self.b(self.a(x)), )

    @MODELS.register_module()
    class RelBranchNet(nn.Module):
        """``a`` sees the batch, ``b`` only its first image: a chain over
        them passes priors of a batch of N to a layer with a batch of 1."""

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 3, padding=1)
            self.b = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            return (self.a(x), self.b(x[:1]))


try:
    _register_test_backbones()
except ImportError:
    pass
