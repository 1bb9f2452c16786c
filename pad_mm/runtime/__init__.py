"""The one home of pad_mm's upstream workarounds, and its CPU stand-ins
for what upstream cannot do on a CPU.

Workarounds (each in its own module, naming the upstream issue, declared
in :data:`~pad_mm.runtime.workarounds.WORKAROUNDS` with the upstream
versions it is written for; listed in
``docs/advanced/upstream_workarounds.md``):

- :mod:`.torch_load`: ``trusted-torch-load`` (open-mmlab/mmengine#1655);
- :mod:`.dist_init`: ``cpu-dist-init``;
- :mod:`.prior_keys`: ``pad-prior-keys``;
- :mod:`.checkpoint`: ``atomic-checkpoints`` and ``verified-resume``
  (file-level pieces in :mod:`.checkpoint_io`).

:func:`apply_workarounds` applies them (``import pad_mm.seg`` /
``pad_mm.cls`` and pad_mm's tools call it; ``import pad_mm`` does not).
One switch turns them all off: ``PAD_MM_NO_PATCH=1``.

CPU stand-ins (registered classes, nothing patched): :mod:`.amp`
(``CPUAmpOptimWrapper``), :mod:`.sync_bn` (``CPUSyncBN``).
"""
from __future__ import annotations

from .workarounds import (NO_PATCH_ENV, WORKAROUNDS, Workaround,
                          applied_workarounds, apply_workarounds,
                          workarounds_enabled)

__all__ = [
    'apply_workarounds', 'applied_workarounds', 'workarounds_enabled',
    'compat_patches_applied', 'Workaround', 'WORKAROUNDS', 'NO_PATCH_ENV'
]


def compat_patches_applied() -> bool:
    """Whether mmengine's checkpoint loading is patched in this process
    (``trusted-torch-load``)."""
    return 'trusted-torch-load' in applied_workarounds()
