"""Load one of the repository's command-line tools as a module."""
from __future__ import annotations

import importlib.util
import os.path as osp
import re
import sys
from types import ModuleType


def load_tool(repo_root: str, rel: str) -> ModuleType:
    """The module of ``tools/<rel>`` (e.g. ``'analysis_tools/get_flops.py'``),
    imported under a name derived from ``rel`` and registered in
    ``sys.modules`` under that name (dataclasses look their module up
    there); loading it again replaces the registered module."""
    name = 'pad_tool_' + re.sub(r'\W', '_', rel)
    spec = importlib.util.spec_from_file_location(
        name, osp.join(repo_root, 'tools', rel))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
