"""pad_mm: PAD-Nets (pixel-wise adaptive dilation) for OpenMMLab.

``pad_mm.ops`` needs torch only. Importing ``pad_mm`` itself, when the
OpenMMLab packages are installed, registers everything (the ``PADConv``
conv layer, ``PADBackbone``, hooks, datasets, metrics) and applies the
mmengine compatibility fixes (crash-safe checkpoints included); configs do it with
``custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)``.
"""
from .version import __version__

try:
    import mmengine  # noqa: F401
except ImportError:  # torch-only use of pad_mm.ops
    HAS_OPENMMLAB = False
else:
    HAS_OPENMMLAB = True
    from . import (datasets, engine, evaluation, models,  # noqa: F401
                   visualization)  # (registration)
    # --- crash-safe checkpoints (atomic saves, verified resume): mmengine
    # patches of pad_mm.runtime.checkpoint, applied with the other fixes
    from .runtime.checkpoint import apply_checkpoint_patches
    apply_checkpoint_patches()
    # ---

__all__ = ['__version__', 'HAS_OPENMMLAB']
