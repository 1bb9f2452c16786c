"""Workaround ``cpu-dist-init``: a CPU-only distributed launch.

``mmengine.dist.init_dist('pytorch')`` calls ``torch.cuda.set_device``
unconditionally and defaults to nccl, so a CPU-only distributed launch
fails. No upstream issue or fix as of mmengine 0.10.7
(``mmengine/dist/utils.py``, ``_init_dist_pytorch``). Without CUDA,
:func:`apply`'s wrapper skips ``set_device`` and uses gloo; with CUDA it
calls mmengine's function unchanged.
"""
from __future__ import annotations

import torch

__all__ = ['apply']


def apply() -> None:
    """Wrap ``mmengine.dist.utils._init_dist_pytorch`` (idempotent)."""
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
    _init_dist_pytorch.__wrapped__ = original
    dist_utils._init_dist_pytorch = _init_dist_pytorch
