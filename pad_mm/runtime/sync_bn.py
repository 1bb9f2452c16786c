"""Synchronised batch norm for distributed runs on the CPU (gloo).

``torch.nn.SyncBatchNorm`` only runs on GPU/XPU tensors, so an mmseg config
with ``norm_cfg=dict(type='SyncBN')`` cannot train on a CPU cluster.
Replacing SyncBN by plain BN would silently change the method (statistics
over the local instead of the global batch). ``CPUSyncBN`` keeps it: the
per-channel statistics are all-reduced over the process group with
differentiable collectives, so 2 processes with a global batch B give the
same forward, gradients and running statistics as 1 process with batch B.
:func:`pad_mm.apis.runner.apply_cpu_distributed` swaps SyncBN for it when there is
no CUDA.

Upstream: "SyncBatchNorm expected input tensor to be on GPU"
(open-mmlab/mmsegmentation#2147); CPU support in torch was attempted in
pytorch/pytorch#78078 (closed, not merged), so no torch version fixes it.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor
from torch.distributed.nn.functional import all_reduce
from torch.nn.modules.batchnorm import _BatchNorm

from pad_mm.registry import MODELS

__all__ = ['CPUSyncBatchNorm']


def _all_reduce(t: Tensor) -> Tensor:
    return all_reduce(t)  # sum; its backward all-reduces the gradient


@MODELS.register_module('CPUSyncBN')
class CPUSyncBatchNorm(_BatchNorm):
    """Batch norm whose training statistics cover the whole process group.

    Same arguments and state-dict keys as ``nn.BatchNorm2d`` (abbreviation
    ``bn`` for mmcv's ``build_norm_layer``). Outside a distributed run, in
    eval mode, or with a world size of 1 it is exactly ``BatchNorm``.
    Statistics are computed in float32 in two passes (mean, then centred
    second moment), each one all-reduce.

    Shapes: [N, C, *] -> [N, C, *].
    """

    _abbr_ = 'bn'

    def __init__(self, num_features: int, eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True,
                 process_group=None) -> None:
        super().__init__(num_features, eps, momentum, affine,
                         track_running_stats)
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f'CPUSyncBatchNorm expects [N, C, *] input, got '
                             f'{input.dim()}D')

    def _synced(self) -> bool:
        return (self.training and dist.is_available()
                and dist.is_initialized()
                and dist.get_world_size(self.process_group) > 1)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        if not self._synced():
            return super().forward(input)
        c = input.shape[1]
        x = input.float()
        dims = [0] + list(range(2, x.dim()))
        local_count = x.numel() // c
        sums = torch.cat([x.sum(dims), x.new_full((1, ), local_count)])
        sums = _all_reduce(sums)
        count = sums[-1]
        mean = sums[:c] / count
        shape = [1, c] + [1] * (x.dim() - 2)
        centred = x - mean.view(shape)
        var = _all_reduce((centred * centred).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                if self.momentum is None:
                    factor = 1.0 / float(self.num_batches_tracked)
                else:
                    factor = self.momentum
                n = float(count)
                unbiased = var.detach() * (n / max(n - 1.0, 1.0))
                self.running_mean.mul_(1 - factor).add_(
                    mean.detach().to(self.running_mean.dtype), alpha=factor)
                self.running_var.mul_(1 - factor).add_(
                    unbiased.to(self.running_var.dtype), alpha=factor)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.float().view(shape) + \
                self.bias.float().view(shape)
        return out.to(input.dtype)

