"""Workaround ``trusted-torch-load``: mmengine's checkpoint loading on
torch >= 2.6.

Upstream: open-mmlab/mmengine#1655 ("torch.load weights_only error"), fix
proposed in open-mmlab/mmengine#1650, not in a release (mmengine 0.10.7 is
the latest). mmengine calls ``torch.load(f, map_location=...)`` without
``weights_only``; torch >= 2.6 defaults it to True, which refuses
mmengine's own checkpoints (they pickle the message hub, numpy scalars,
...), so ``--resume``, ``load_from`` and ``init_cfg=Pretrained`` fail.
:func:`apply` gives mmengine's checkpoint modules a ``torch`` whose
``load`` defaults to ``weights_only=False`` (the behaviour mmengine was
written for; only load checkpoints you trust). An explicit
``weights_only`` is respected.
"""
from __future__ import annotations

import types

import torch

__all__ = ['trusted_torch_load', 'apply', 'applied']


def trusted_torch_load(f, *args, **kwargs):
    """``torch.load`` with ``weights_only=False`` unless given."""
    kwargs.setdefault('weights_only', False)
    return torch.load(f, *args, **kwargs)


class _TorchWithTrustedLoad(types.ModuleType):
    """Stands in for ``torch`` inside mmengine's checkpoint modules."""

    def __init__(self) -> None:
        super().__init__('torch')
        self.load = trusted_torch_load

    def __getattr__(self, name: str):
        return getattr(torch, name)


def applied() -> bool:
    """Whether mmengine's checkpoint module loads through
    :func:`trusted_torch_load`."""
    import mmengine.runner.checkpoint as ckpt
    return isinstance(ckpt.torch, _TorchWithTrustedLoad)


def apply() -> None:
    """Patch ``mmengine.runner.checkpoint`` and
    ``mmengine.utils.dl_utils.hub`` (idempotent)."""
    import mmengine.runner.checkpoint as ckpt
    import mmengine.utils.dl_utils.hub as hub
    if applied():
        return
    proxy = _TorchWithTrustedLoad()
    ckpt.torch = proxy
    hub.torch = proxy
