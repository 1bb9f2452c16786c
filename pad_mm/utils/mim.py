"""pad_mm's configs, tools and model index, where OpenMMLab looks for them.

An installed wheel carries ``configs/``, ``tools/``, ``model-index.yml``
and ``model-index-mmpretrain.yml`` under ``pad_mm/.mim`` (copied by
``setup.py``, as mmseg and mmdet do; symlinked by a development install).
Run from a source checkout without installing, the same files are found at
the repository root.

- mmengine resolves ``pad_mm::folder/config.py`` (``_base_`` inheritance,
  ``mmengine.hub.get_config``) only for modules in its ``MODULE2PACKAGE``
  table; :func:`register_module2package` adds pad_mm to it.
- mmpretrain's ``get_model(name)`` / ``list_models(pattern)`` read its
  ``ModelHub``; :func:`register_model_hub` registers pad_mm's
  classification model index there (model names = the metafiles' ``Name``,
  i.e. the config file names).
"""
from __future__ import annotations

import os.path as osp
import warnings

__all__ = [
    'MIM_PACKAGE', 'mim_root', 'register_module2package',
    'register_model_hub', 'register_codebase'
]

#: module name -> pip package name (the same for pad_mm)
MIM_PACKAGE = 'pad_mm'
#: the index mim / mmengine read (all config folders)
MODEL_INDEX = 'model-index.yml'
#: the classification folders only, for mmpretrain's ModelHub
PRETRAIN_INDEX = 'model-index-mmpretrain.yml'

_hub_registered: str | None = None


def mim_root() -> str | None:
    """The folder holding ``configs/``, ``tools/`` and ``model-index.yml``:
    ``pad_mm/.mim`` of an installed package, else the source checkout's
    root; None when neither has a model index."""
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.join(package, '.mim'), osp.dirname(package)):
        if osp.isfile(osp.join(root, MODEL_INDEX)) and osp.isdir(
                osp.join(root, 'configs')):
            return root
    return None


def register_module2package() -> None:
    """Let mmengine resolve ``pad_mm::`` config paths."""
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE.setdefault(MIM_PACKAGE, MIM_PACKAGE)


def register_model_hub() -> list[str]:
    """Register pad_mm's classification models with mmpretrain's
    ``ModelHub`` (idempotent). Returns the registered names (lower case,
    as ModelHub keys them); empty when there is no model index (a source
    copy without ``model-index-mmpretrain.yml``), with a warning."""
    global _hub_registered
    root = mim_root()
    if root is None or not osp.isfile(osp.join(root, PRETRAIN_INDEX)):
        warnings.warn('pad_mm: no model index found (neither pad_mm/.mim '
                      'nor a source checkout); mmpretrain get_model() '
                      'does not know pad_mm model names')
        return []
    from modelindex.load_model_index import load
    from mmpretrain.apis import ModelHub
    index = osp.join(root, PRETRAIN_INDEX)
    models = load(index)
    models.build_models_with_collections()
    names = [m.name.lower() for m in models.models]
    if _hub_registered == index or all(ModelHub.has(n) for n in names):
        _hub_registered = index
        return names
    ModelHub.register_model_index(index, config_prefix=root)
    _hub_registered = index
    return names


def register_codebase() -> None:
    """:func:`register_module2package` and :func:`register_model_hub`
    (``import pad_mm.cls`` does both; ``import pad_mm.seg`` the first)."""
    register_module2package()
    register_model_hub()
