"""Patches of mmengine 0.10.7 for current PyTorch, applied once by
:func:`apply_compat_patches` (``import pad_mm`` calls it unless the
environment variable ``PAD_MM_NO_PATCH=1`` is set; see
:mod:`pad_mm.runtime`). Each patch names the upstream issue it works around
and the version that fixes it.

1. :func:`trusted_torch_load` — checkpoint loading on torch >= 2.6.
   Upstream: open-mmlab/mmengine#1655 ("torch.load weights_only error"),
   fix proposed in open-mmlab/mmengine#1650, not in a release (mmengine
   0.10.7 is the latest). mmengine calls ``torch.load(f, map_location=...)``
   without ``weights_only``; torch >= 2.6 defaults it to True, which
   refuses mmengine's own checkpoints (they pickle the message hub, numpy
   scalars, ...), so ``--resume``, ``load_from`` and
   ``init_cfg=Pretrained`` fail. mmengine's checkpoint modules get a
   ``torch`` whose ``load`` defaults to ``weights_only=False`` (the
   behaviour mmengine was written for; only load checkpoints you trust).
   An explicit ``weights_only`` is respected.
2. :func:`_patch_dist_init` — ``mmengine.dist.init_dist('pytorch')`` calls
   ``torch.cuda.set_device`` unconditionally and defaults to nccl, so a
   CPU-only distributed launch fails. No upstream issue or fix as of
   mmengine 0.10.7 (``mmengine/dist/utils.py``, ``_init_dist_pytorch``);
   without CUDA we skip ``set_device`` and use gloo.
3. :func:`_patch_load_state_dict` — not a bug but a usability fix for PAD:
   mmengine's ``load_state_dict`` lists every missing key in one long
   warning. Loading a vanilla checkpoint into a PAD model is expected to
   miss exactly the PAD prior parameters: those keep their initialisation
   and are reported in one line; any other mismatch is still reported by
   mmengine as before. ``strict=True`` is unchanged.

CPU AMP (:mod:`pad_mm.runtime.amp`) and CPU SyncBN
(:mod:`pad_mm.runtime.sync_bn`) are registered classes, not patches.
"""
from __future__ import annotations

import logging
import types
from collections import OrderedDict

import mmengine.dist.utils as dist_utils
import mmengine.runner as runner_pkg
import mmengine.runner.checkpoint as ckpt
import mmengine.utils.dl_utils.hub as hub
import torch
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from pad_mm.models.layers import pad_layers

__all__ = [
    'apply_compat_patches', 'compat_patches_applied', 'trusted_torch_load',
    'pad_prior_keys'
]

_APPLIED = False


def trusted_torch_load(f, *args, **kwargs):
    """``torch.load`` with ``weights_only=False`` unless given (patch 1:
    open-mmlab/mmengine#1655, not fixed in mmengine <= 0.10.7)."""
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
    """Patch 2: CPU-only ``init_dist('pytorch')`` (no upstream issue or
    fix as of mmengine 0.10.7)."""
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


def pad_prior_keys(module) -> list[str]:
    """State-dict keys of the PAD prior parameters of ``module`` (model
    wrappers are unwrapped), in module order."""
    keys = []
    for name, m in pad_layers(module):
        prefix = f'{name}.prior.' if name else 'prior.'
        keys += [prefix + n for n, _ in m.prior.named_parameters()]
    return keys


def _patch_load_state_dict() -> None:
    """Patch 3: one line for the PAD prior keys a vanilla checkpoint
    lacks (a PAD usability fix, not an upstream bug)."""
    original = ckpt.load_state_dict
    if getattr(original, '_pad_mm_patched', False):
        return

    def load_state_dict(module, state_dict, strict=False, logger=None):
        if strict:
            return original(module, state_dict, strict, logger)
        missing = [k for k in pad_prior_keys(module) if k not in state_dict]
        if not missing:
            return original(module, state_dict, strict, logger)
        own = (module.module if is_model_wrapper(module) else
               module).state_dict()
        filled = OrderedDict(state_dict)
        metadata = getattr(state_dict, '_metadata', None)
        if metadata is not None:
            filled._metadata = metadata
        for key in missing:  # load as themselves: left unchanged
            filled[key] = own[key]
        layers = list(dict.fromkeys(k.rsplit('.prior.', 1)[0]
                                    for k in missing))
        for layer in layers:  # and so do their tau and dilation options
            for key in (f'{layer}.pad_tau', f'{layer}.pad_dilations'):
                if key in own and key not in state_dict:
                    filled[key] = own[key]
        result = original(module, filled, strict, logger)
        if get_dist_info()[0] == 0:
            print_log(
                f'PAD: the checkpoint has no PAD prior parameters for '
                f'{len(layers)} PAD layer(s) ({len(missing)} tensors '
                f'*.prior.*, first: {missing[0]}); they keep their '
                'initialisation (native dilation favoured), as expected when '
                'loading a vanilla checkpoint into a PAD model',
                logger=logger if logger is not None else 'current',
                level=logging.WARNING)
        return result

    load_state_dict._pad_mm_patched = True
    ckpt.load_state_dict = load_state_dict
    runner_pkg.load_state_dict = load_state_dict


def compat_patches_applied() -> bool:
    """Whether :func:`apply_compat_patches` ran in this process."""
    return _APPLIED


def apply_compat_patches() -> bool:
    """Apply the patches above once (idempotent); logs once at INFO.
    Returns True when they were applied by this call."""
    global _APPLIED
    if _APPLIED:
        return False
    proxy = _TorchWithTrustedLoad()
    ckpt.torch = proxy
    hub.torch = proxy
    _patch_dist_init()
    _patch_load_state_dict()
    _APPLIED = True
    logging.getLogger('pad_mm').info(
        'pad_mm: patched mmengine for torch >= 2.6 checkpoint loading '
        '(weights_only=False for trusted checkpoints), CPU dist init and '
        'PAD prior key reporting; set PAD_MM_NO_PATCH=1 to turn this off')
    return True
