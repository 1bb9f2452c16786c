"""pad_mm as an OpenMMLab codebase: module registration, ``mim`` /
mmengine hub integration, and the helpers its command-line tools share.

- :func:`register_all_modules`: pad_mm's modules plus mmseg's and
  mmpretrain's, and a default scope (as ``mmseg.utils`` /
  ``mmpretrain.utils`` offer it);
- :func:`register_codebase`: what ``import pad_mm`` does so that
  ``_base_ = ['pad_mm::...']``, ``mmengine.hub.get_config('pad_mm::...')``
  and mmpretrain's ``get_model('pad_...')`` / ``list_models('*pad*')``
  work (see :mod:`.mim`);
- :func:`run_tool`: one-line errors for pad_mm's own config errors in the
  tools (``--debug`` shows the traceback).
"""
from .cli import run_tool
from .mim import (MIM_PACKAGE, mim_root, register_codebase,
                  register_model_hub, register_module2package)
from .setup_env import register_all_modules

__all__ = [
    'register_all_modules', 'register_codebase', 'register_module2package',
    'register_model_hub', 'mim_root', 'MIM_PACKAGE', 'run_tool'
]
