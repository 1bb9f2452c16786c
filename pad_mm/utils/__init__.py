"""pad_mm as an OpenMMLab codebase: registration with the codebases it
builds on, ``mim`` / mmengine hub integration, and the helpers its
command-line tools share.

- :func:`register_task`: what ``import pad_mm.seg`` / ``pad_mm.cls`` do
  (pad_mm's classes visible from the task's scope, ``pad_mm::`` config
  paths, mmpretrain's ``get_model`` names, the upstream workarounds);
  :func:`register_config` does it for a config's ``default_scope``,
  :func:`register_installed` for every installed task (a config's
  ``custom_imports=dict(imports=['pad_mm'])``);
- :func:`register_all_modules`: that plus the task codebase's own modules
  and a default scope (as ``mmseg.utils`` / ``mmpretrain.utils`` offer it);
- :func:`register_module2package`: let mmengine resolve ``pad_mm::``
  config paths (before a config is read; see :mod:`.mim`);
- :func:`run_tool`: one-line errors for pad_mm's own config errors in the
  tools (``--debug`` shows the traceback).
"""
from .cli import run_tool
from .mim import (MIM_PACKAGE, mim_root, register_codebase,
                  register_model_hub, register_module2package)
from .setup_env import (register_all_modules, register_config,
                        register_installed, register_task)

__all__ = [
    'register_all_modules', 'register_task', 'register_config',
    'register_installed', 'register_codebase',
    'register_module2package', 'register_model_hub', 'mim_root',
    'MIM_PACKAGE', 'run_tool'
]
