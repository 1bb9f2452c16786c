"""Fixes for mmengine 0.10.7 on current PyTorch, applied when pad_mm is
imported (``custom_imports=dict(imports=['pad_mm'])`` does that).

1. mmengine calls ``torch.load(f, map_location=...)`` without
   ``weights_only``; torch >= 2.6 defaults it to True, which refuses
   mmengine's own checkpoints (they pickle the message hub, numpy scalars,
   ...), so ``--resume``, ``load_from`` and ``init_cfg=Pretrained`` fail.
   We give mmengine's checkpoint modules a ``torch`` whose ``load`` defaults
   to ``weights_only=False`` (the behaviour mmengine was written for; only
   load checkpoints you trust). An explicit ``weights_only`` is respected.
2. ``mmengine.dist.init_dist('pytorch')`` calls ``torch.cuda.set_device``
   unconditionally and defaults to the nccl backend; on a machine without
   CUDA we skip ``set_device`` and use gloo.
"""
from __future__ import annotations

import types

import torch

__all__ = ['apply_compat_patches', 'trusted_torch_load']

_APPLIED = False


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


def _patch_dist_init() -> None:
    import mmengine.dist.utils as dist_utils
    original = dist_utils._init_dist_pytorch
    if getattr(original, '_pad_mm_patched', False):
        return

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if torch.cuda.is_available():
            return original(backend, init_backend=init_backend, **kwargs)
        # CPU only: no set_device, and nccl cannot run without CUDA
        if backend == 'nccl':
            backend = 'gloo'
        set_device = torch.cuda.set_device
        torch.cuda.set_device = lambda *a, **k: None
        try:
            return original(backend, init_backend=init_backend, **kwargs)
        finally:
            torch.cuda.set_device = set_device

    _init_dist_pytorch._pad_mm_patched = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch


def apply_compat_patches() -> None:
    """Apply the fixes above once (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    import mmengine.runner.checkpoint as ckpt
    import mmengine.utils.dl_utils.hub as hub
    proxy = _TorchWithTrustedLoad()
    ckpt.torch = proxy
    hub.torch = proxy
    _patch_dist_init()
    _APPLIED = True
