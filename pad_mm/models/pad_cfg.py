"""The ``pad_cfg`` of ``convert_to_pad`` and the ``PADBackbone`` builder.

A ``pad_cfg`` is one chain entry or a list of them. An entry holds the
chain keys of :data:`CHAIN_KEYS` (``layers``, ``name``) and any layer
setting of the spec, :class:`~pad_mm.models.layers.settings.PADSettings`.
:func:`parse_pad_cfg` checks it once; bad values raise one
:class:`~pad_mm.models.layers.settings.PADConfigError` naming the field
path (``pad_cfg[1].dilations``), the value and what is allowed.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .layers.settings import (PADConfigError, PADSettings, parse_settings,
                              setting_specs)

__all__ = ['PADChainCfg', 'parse_pad_cfg', 'CHAIN_KEYS', 'PAD_CFG_KEYS']

# keys of a pad_cfg entry that are about the chain, not the layers
CHAIN_KEYS = {
    'layers': ('fnmatch pattern(s) over the `nn.Conv2d` names of the model, '
               "e.g. `'layer4.*.conv2'`; the matched convs form one chain "
               'in module order'),
    'name': ('the chain name (default: the patterns joined by commas); '
             'unique within a pad_cfg'),
}


PAD_CFG_KEYS = tuple(CHAIN_KEYS) + tuple(f.name for f in setting_specs())


@dataclass(frozen=True)
class PADChainCfg:
    """One parsed ``pad_cfg`` entry: one aggregation chain."""

    layers: tuple[str, ...]
    name: str
    settings: PADSettings
    path: str = field(default='pad_cfg', compare=False)


def parse_pad_cfg(pad_cfg: Any, path: str = 'pad_cfg') -> list[PADChainCfg]:
    """Check a ``pad_cfg`` (one entry or a non-empty list of them).

    Rules: every entry has ``layers`` (a non-empty pattern or list of
    distinct patterns); chain names are unique; every other key is a
    setting of :class:`PADSettings` with an allowed value.

    Raises:
        PADConfigError: naming the field (``pad_cfg[1].dilations``), the
            value and what is allowed.
    """
    if isinstance(pad_cfg, Mapping):
        entries, paths = [pad_cfg], [path]
    elif isinstance(pad_cfg, (list, tuple)) and pad_cfg:
        entries = list(pad_cfg)
        paths = [f'{path}[{i}]' for i in range(len(entries))]
    else:
        raise PADConfigError(path, pad_cfg,
                             'a dict or a non-empty list of dicts, each '
                             "with 'layers' (one chain each)",
                             'must not be empty' if isinstance(
                                 pad_cfg, (list, tuple)) else None)
    chains: list[PADChainCfg] = []
    names: dict[str, str] = {}
    for entry, where in zip(entries, paths):
        if not isinstance(entry, Mapping):
            raise PADConfigError(where, entry, "a dict with 'layers' and "
                                 'PADConv arguments')
        if 'layers' not in entry:
            raise PADConfigError(_join(where, 'layers'), None,
                                 'a module-name pattern or a list of them, '
                                 "e.g. 'layer4.*.conv2'",
                                 f"{where} needs 'layers'")
        layers = entry['layers']
        if isinstance(layers, str):
            layers = [layers]
        if not isinstance(layers, (list, tuple)) or not layers or not all(
                isinstance(p, str) and p for p in layers):
            raise PADConfigError(_join(where, 'layers'), entry['layers'],
                                 'a non-empty fnmatch pattern or list of '
                                 "them over conv names, e.g. "
                                 "'layer4.*.conv2'")
        if len(set(layers)) != len(layers):
            raise PADConfigError(_join(where, 'layers'), entry['layers'],
                                 'distinct patterns', 'duplicate pattern')
        name = entry.get('name', ','.join(layers))
        if not isinstance(name, str) or not name:
            raise PADConfigError(_join(where, 'name'), name,
                                 'a non-empty str')
        if name in names:
            raise PADConfigError(_join(where, 'name'), name,
                                 'a chain name not used by another entry',
                                 f'{names[name]} has the same name')
        names[name] = where
        settings = parse_settings(entry, where, ignore=tuple(CHAIN_KEYS))
        chains.append(PADChainCfg(tuple(layers), name, settings, where))
    return chains




def _join(path: str, key: str) -> str:
    return f'{path}.{key}' if path else key
