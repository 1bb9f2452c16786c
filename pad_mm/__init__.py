"""pad_mm: PAD-Nets (pixel-wise adaptive dilation) for OpenMMLab.

``pad_mm.ops`` needs torch only. Importing ``pad_mm`` itself, when the
OpenMMLab packages are installed, registers everything (the ``PADConv``
conv layer, the ``PADBackbone`` builder, hooks, datasets, metrics; see
:mod:`pad_mm.registry`) and applies the mmengine checkpoint-loading fix
and the crash-safe checkpoint saving and resume
(:func:`pad_mm.runtime.apply_default_patches`; ``PAD_MM_NO_PATCH=1`` turns
it off). Configs do it with
``custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)``.
"""
from .version import __version__

try:
    import mmengine  # noqa: F401
except ImportError:  # torch-only use of pad_mm.ops
    HAS_OPENMMLAB = False
else:
    HAS_OPENMMLAB = True
    from . import (apis, datasets, engine, evaluation, models,  # noqa: F401
                   runtime, visualization)  # (registration)
    runtime.apply_default_patches()

__all__ = ['__version__', 'HAS_OPENMMLAB']
