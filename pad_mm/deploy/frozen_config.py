"""Config rewriting for deployment: a ``PADBackbone`` config back to its
upstream backbone, a config without pad_mm, and a PAD config that keeps
only some PAD layers."""
from __future__ import annotations

import copy
import fnmatch
import importlib
import inspect

from mmengine.config import Config
from mmengine.registry import Registry

__all__ = [
    'backbone_base_cfg', 'regular_config', 'plain_config', 'pad_config'
]


def backbone_base_cfg(backbone_cfg: dict) -> tuple[dict, list[dict]]:
    """The upstream backbone dict (``base_type`` as ``type``, no
    ``pad_cfg``) and the ``pad_cfg`` entries of a ``PADBackbone`` dict.

    Raises:
        ValueError: ``backbone_cfg`` is not a ``PADBackbone``.
    """
    bb = copy.deepcopy(dict(backbone_cfg))
    if bb.get('type') != 'PADBackbone':
        raise ValueError("model.backbone.type must be 'PADBackbone' "
                         f"(PAD layers placed by pad_cfg), got "
                         f"{bb.get('type')!r}")
    pad_cfg = bb.pop('pad_cfg')
    bb['type'] = bb.pop('base_type')
    entries = [pad_cfg] if isinstance(pad_cfg, dict) else list(pad_cfg)
    return bb, [dict(e) for e in entries]


def regular_config(cfg: Config) -> Config | None:
    """The config with its ``PADBackbone`` replaced by the plain
    ``base_type`` backbone (None if the model has no PADBackbone). Nothing
    else changes (for a config without any pad_mm name see
    :func:`plain_config`)."""
    cfg = copy.deepcopy(cfg)
    backbone = cfg.model.get('backbone')
    if not isinstance(backbone, dict) or backbone.get('type') != \
            'PADBackbone':
        return None
    backbone['type'] = backbone.pop('base_type')
    backbone.pop('pad_cfg', None)
    return cfg


def _pad_mm_class(type_name, registries) -> type | None:
    for reg in registries:
        try:
            cls = reg.get(type_name)
        except Exception:  # noqa: BLE001
            cls = None
        if cls is not None:
            mod = getattr(cls, '__module__', '') or ''
            return cls if mod.split('.')[0] == 'pad_mm' else None
    return None


def _upstream_dataset(node: dict, cls: type) -> dict:
    """A pad_mm dataset dict as its nearest upstream base class: the
    class's METAINFO and the keyword defaults the base accepts are written
    out; keywords only the subclass knows (e.g. ``generate``) are
    dropped."""
    base = next(b for b in cls.__mro__[1:]
                if not (b.__module__ or '').startswith('pad_mm'))
    base_params = inspect.signature(base.__init__).parameters
    out = {k: v for k, v in node.items()
           if k == 'type' or k in base_params}
    out['type'] = base.__name__
    for k, p in inspect.signature(cls.__init__).parameters.items():
        if k in base_params and k not in out and \
                p.default is not inspect.Parameter.empty:
            out[k] = p.default
    meta = getattr(cls, 'METAINFO', None)
    if meta and 'metainfo' not in out:
        out['metainfo'] = {k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in meta.items()}
    return out


def plain_config(cfg: Config, backbone: dict) -> tuple[Config, list[str]]:
    """The config without pad_mm: ``backbone`` (an upstream backbone dict)
    as the model's backbone, no pad_mm import, no PAD hooks, pad_mm
    datasets as their upstream base. Returns the config and what could not
    be translated (type names)."""
    scope = cfg.get('default_scope', 'mmseg')
    regmod = importlib.import_module(f'{scope}.registry')
    registries = [v for v in vars(regmod).values()
                  if isinstance(v, Registry)]
    new = copy.deepcopy(cfg)
    new.model.backbone = backbone
    ci = new.get('custom_imports')
    if ci is not None:
        imports = [m for m in ci.get('imports', [])
                   if m.split('.')[0] != 'pad_mm']
        if imports:
            new.custom_imports = dict(ci, imports=imports)
        else:
            new.pop('custom_imports')
    if new.get('custom_hooks'):
        new.custom_hooks = [h for h in new.custom_hooks
                            if not _pad_mm_class(h.get('type'), registries)]
    left = []

    def walk(node):
        if isinstance(node, dict):
            t = node.get('type')
            if isinstance(t, str):
                cls = _pad_mm_class(t, registries)
                if cls is not None:
                    if 'Dataset' in [b.__name__ for b in cls.__mro__] or \
                            t.endswith('Dataset'):
                        node = _upstream_dataset(node, cls)
                    else:
                        left.append(t)
            return type(node)({k: walk(v) for k, v in node.items()})
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, tuple):
            return tuple(walk(v) for v in node)
        return node

    for key in list(new.keys()):
        new[key] = walk(new[key])
    return new, left


def pad_config(cfg: Config, base: dict, entries: list[dict],
               rows: dict[str, dict]) -> Config:
    """The PAD config on the upstream backbone dict ``base`` whose
    ``pad_cfg`` lists only the PAD layers left: of each of ``entries``, the
    layers whose row in ``rows`` (name -> ``dict(frozen=...)``) is not
    frozen."""
    new = copy.deepcopy(cfg)
    names = [n for n in rows]
    left_entries = []
    for e in entries:
        pats = e['layers'] if not isinstance(e['layers'], str) else [
            e['layers']]
        mine = [n for n in names if any(fnmatch.fnmatchcase(n, p)
                                        for p in pats)]
        keep = [n for n in mine if not rows[n]['frozen']]
        if keep:
            left_entries.append(dict(e, layers=keep,
                                     name=e.get('name', ','.join(pats))))
    bb = dict(base)
    bb['base_type'] = bb.pop('type')
    bb['type'] = 'PADBackbone'
    bb['pad_cfg'] = left_entries if len(left_entries) > 1 else \
        left_entries[0]
    new.model.backbone = bb
    return new
