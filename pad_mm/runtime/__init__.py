"""Runtime plumbing that is not about PAD: fixes and stand-ins for
mmengine / torch (each naming its upstream issue), and the helpers that
``tools/train.py`` and ``tools/test.py`` share.

- :mod:`.compat`: mmengine patches (torch >= 2.6 checkpoint loading, CPU
  dist init, PAD prior key reporting), applied by ``import pad_mm`` through
  :func:`apply_default_patches` unless ``PAD_MM_NO_PATCH=1``;
- :mod:`.checkpoint`: crash-safe checkpoints (atomic saves with a sha256
  beside them, verified resume with fallback), applied the same way;
- :mod:`.amp`: ``CPUAmpOptimWrapper``; :mod:`.sync_bn`: ``CPUSyncBN``;
- :mod:`.hooks`: ``RNGStateHook`` (resumable RNG state),
  ``PADNumericsHook`` (fail fast on NaN/inf);
- :mod:`.runner_utils`: config preparation of the tools;
- :mod:`.validate`: the pre-flight check of a config.
"""
from __future__ import annotations

import os

from . import amp, sync_bn  # noqa: F401  (registration)
from .checkpoint import apply_checkpoint_patches
from .compat import (apply_compat_patches, compat_patches_applied,
                     trusted_torch_load)
from .hooks import (PADNumericsHook, RNGStateHook, get_rng_state,
                    set_rng_state)

__all__ = [
    'apply_default_patches', 'apply_compat_patches',
    'apply_checkpoint_patches', 'compat_patches_applied',
    'trusted_torch_load', 'PADNumericsHook', 'RNGStateHook', 'get_rng_state',
    'set_rng_state', 'NO_PATCH_ENV'
]

#: set to 1 to keep ``import pad_mm`` from patching mmengine
NO_PATCH_ENV = 'PAD_MM_NO_PATCH'


def apply_default_patches() -> bool:
    """What ``import pad_mm`` does: apply :func:`apply_compat_patches`
    and :func:`apply_checkpoint_patches` unless the environment variable
    ``PAD_MM_NO_PATCH`` is ``1``/``true``
    (then call ``apply_compat_patches()`` yourself if you need it).
    Returns whether the patches are in effect."""
    if os.environ.get(NO_PATCH_ENV, '').strip().lower() in ('1', 'true',
                                                            'yes'):
        return compat_patches_applied()
    apply_compat_patches()
    apply_checkpoint_patches()
    return True
