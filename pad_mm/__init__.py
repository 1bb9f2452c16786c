"""pad_mm: PAD-Nets (pixel-wise adaptive dilation) for OpenMMLab.

``import pad_mm`` in Python imports nothing of OpenMMLab and changes
nothing upstream: ``pad_mm.ops`` needs torch only, ``pad_mm.models.layers``
torch, mmengine and mmcv. pad_mm's classes live in its own registry scope
``pad_mm`` (:mod:`pad_mm.registry`; mmengine finds it by itself for
``'pad_mm.X'`` types and for configs inheriting from a ``pad_mm::`` base).

To make them visible under their plain names from a task's scope (and let
mmengine resolve ``pad_mm::`` config paths, and apply the upstream
workarounds of :mod:`pad_mm.runtime` unless ``PAD_MM_NO_PATCH=1``):

- a config: ``custom_imports = dict(imports=['pad_mm'],
  allow_failed_imports=False)``, as pad_mm's configs have it. When
  mmengine's config loader imports ``pad_mm`` by that name, pad_mm
  registers itself for every installed task (mmseg, mmpretrain);
  ``imports=['pad_mm.seg']`` / ``['pad_mm.cls']`` registers one task only;
- Python: ``import pad_mm.seg`` / ``import pad_mm.cls``, or
  :func:`pad_mm.utils.register_all_modules`.

See ``docs/advanced/registry.md``.
"""
import importlib.util as _util

from .version import __version__

#: whether mmengine is installed (found, not imported)
HAS_OPENMMLAB = _util.find_spec('mmengine') is not None

__all__ = ['__version__', 'HAS_OPENMMLAB']


def _imported_by_custom_imports() -> bool:
    """Whether this import is a config's ``custom_imports`` of the name
    ``'pad_mm'`` (``mmengine.utils.misc.import_modules_from_strings``
    importing ``'pad_mm'`` is on the call stack)."""
    import sys
    frame = sys._getframe(1)
    for _ in range(64):
        if frame is None:
            return False
        if frame.f_code.co_name == 'import_modules_from_strings' and str(
                frame.f_globals.get('__name__', '')).startswith('mmengine'):
            return frame.f_locals.get('imp') == __name__
        frame = frame.f_back
    return False


if _imported_by_custom_imports():
    from .utils.setup_env import register_installed
    register_installed()
