"""Place PAD layers into any model by module-name pattern.

``convert_to_pad(model, pad_cfg)`` replaces the matched ``nn.Conv2d``
modules by :class:`PADConv2d` (copying their weights) and links each group
into an aggregation chain. The ``PADBackbone`` builder
(:func:`build_pad_backbone`) does the same from a config::

    model = dict(
        backbone=dict(
            type='PADBackbone',          # was: type='ResNetV1c'
            base_type='ResNetV1c',       # the backbone to build and convert
            pad_cfg=dict(
                layers=['layer4.*.conv2'],  # fnmatch over conv names
                dilations=(1, 2, 4),
                aggregation='markov')))

Every other key of the backbone dict (depth, strides, init_cfg, ...) is
passed to ``base_type`` unchanged, so a config that inherits an upstream
backbone states only this delta, and the state-dict keys stay those of the
upstream backbone (plus ``*.prior.*``).
"""
from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import torch.nn as nn
from mmengine.logging import print_log

from pad_mm.registry import MODELS

from .layers import (PADConfigError, PADConv2d, act_name, link_chain,
                     non_adaptive_reason, pad_layers)
from .pad_cfg import PAD_CFG_KEYS, PADChainCfg, parse_pad_cfg

__all__ = [
    'convert_to_pad', 'match_pad_cfg', 'build_pad_backbone', 'PADBackbone',
    'is_convertible_conv', 'PAD_CFG_KEYS', 'pad_report', 'format_pad_report'
]


def is_convertible_conv(m: nn.Module) -> bool:
    """Whether ``convert_to_pad`` may replace ``m``: a plain ``nn.Conv2d``
    (or mmcv's ``Conv2d`` wrapper, which only adds empty-tensor support),
    not already a PAD layer and not a subclass with its own forward."""
    if not isinstance(m, nn.Conv2d) or isinstance(m, PADConv2d):
        return False
    if type(m).forward is nn.Conv2d.forward:
        return True
    return type(m).__module__ == 'mmcv.cnn.bricks.wrappers' and \
        type(m).__name__ == 'Conv2d'


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition('.')
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, module)


def _to_pad(conv: nn.Conv2d, chain: PADChainCfg) -> PADConv2d:
    pad = PADConv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
        settings=chain.settings)
    if conv.weight.device.type != 'meta':
        pad.weight.data.copy_(conv.weight.data)
        if conv.bias is not None:
            pad.bias.data.copy_(conv.bias.data)
    pad.train(conv.training)
    return pad


def match_pad_cfg(model: nn.Module,
                  chains: Sequence[PADChainCfg]) -> list[list[str]]:
    """The names of the convs each chain places, in module order.

    Raises:
        PADConfigError: a pattern matches no convertible conv, matches a
            conv that cannot be made adaptive (e.g. 1x1), or a conv is
            matched by two chains.
    """
    convs = [(n, m) for n, m in model.named_modules()
             if is_convertible_conv(m)]
    conv_names = [n for n, _ in convs]
    modules = dict(convs)
    taken: dict[str, str] = {}
    out = []
    for chain in chains:
        field = f'{chain.path}.layers'
        matched: list[str] = []
        for pattern in chain.layers:
            hits = [n for n in conv_names if fnmatch.fnmatchcase(n, pattern)]
            done = [n for n, m in model.named_modules()
                    if isinstance(m, PADConv2d)
                    and fnmatch.fnmatchcase(n, pattern)]
            if not hits and done:
                raise PADConfigError(
                    field, pattern,
                    'a pattern matching convs that are not PAD layers yet',
                    f'matches only PAD layers, already PAD: {done[:6]}'
                    f'{" ..." if len(done) > 6 else ""} (this model was '
                    'converted before; convert a model once)')
            if not hits:
                shown = conv_names[:6] + (['...'] if len(conv_names) > 6
                                          else [])
                raise PADConfigError(
                    field, pattern,
                    f'a pattern matching nn.Conv2d names of '
                    f'{type(model).__name__}, e.g. {shown}',
                    f'matches no nn.Conv2d of {type(model).__name__}')
            for name in hits:
                if name in taken and taken[name] != chain.path:
                    raise PADConfigError(
                        field, pattern, 'each conv in at most one chain',
                        f'conv {name!r} is already placed by '
                        f'{taken[name]}')
                conv = modules[name]
                reason = non_adaptive_reason(conv.kernel_size, conv.stride,
                                             conv.padding, conv.dilation,
                                             conv.padding_mode)
                if reason is not None:
                    raise PADConfigError(
                        field, pattern,
                        'patterns matching 3x3 (odd k > 1) convs with '
                        'padding dilation*(k-1)//2',
                        f'matches {name!r}, which cannot be made adaptive '
                        f'({reason})')
                taken[name] = chain.path
                if name not in matched:
                    matched.append(name)
        matched.sort(key=conv_names.index)
        out.append(matched)
    return out


def convert_to_pad(model: nn.Module,
                   pad_cfg: dict | Sequence[dict]) -> nn.Module:
    """Replace the convs of ``model`` matched by ``pad_cfg`` by PAD layers.

    Args:
        model: any module; converted in place and returned (on the
            ``meta`` device too: then no weights are copied).
        pad_cfg: one chain spec or a list of them, or the list of
            :class:`~pad_mm.models.pad_cfg.PADChainCfg` that
            :func:`~pad_mm.models.pad_cfg.parse_pad_cfg` made of them (see
            :func:`~pad_mm.models.pad_cfg.parse_pad_cfg`). A spec is a dict
            with ``layers`` (fnmatch patterns over the names of the model's
            ``nn.Conv2d`` modules, e.g. ``'layer4.*.conv2'``), an optional
            chain ``name`` and any PAD setting (``dilations``,
            ``aggregation``, ``tau``, ...). The matched convs form one
            aggregation chain in module order.

    Raises:
        PADConfigError: (a ``ValueError``) a bad setting, a pattern that
            matches no conv, a matched conv that cannot be made adaptive
            (e.g. 1x1), a conv matched by two chains, duplicate patterns or
            chain names; the error names the field (``pad_cfg[1].layers``).
    """
    if isinstance(pad_cfg, (list, tuple)) and pad_cfg and all(
            isinstance(c, PADChainCfg) for c in pad_cfg):
        chains = list(pad_cfg)  # already parsed
    else:
        chains = parse_pad_cfg(pad_cfg)
    for chain, names in zip(chains, match_pad_cfg(model, chains)):
        pads = []
        for name in names:
            pad = _to_pad(model.get_submodule(name), chain)
            _set_submodule(model, name, pad)
            pads.append(pad)
        link_chain(pads, chain.name)
    print_log(format_pad_report(pad_report(model),
                                f'PAD conversion of {type(model).__name__}'),
              logger='current')
    return model


def _bound(act: nn.Module) -> float | None:
    bound = getattr(act, 'bound', None)
    return None if bound is None else round(bound, 6)


def pad_report(model: nn.Module) -> list[dict]:
    """One row per adaptive PAD layer of ``model`` (wrappers unwrapped), in
    module order: what was actually built.

    Keys: ``layer`` (module name), ``chain`` (chain name or None),
    ``chain_index``, ``native_dilation`` (the conv's own), ``dilations``
    (absolute options), ``dilation_mode``, ``aggregation``, ``f`` (the
    activation of eqs. 3-5), ``f_bound`` (the bound of a learnable f,
    e.g. ``ScaledTanh``'s s0 * exp(rho), as it is now; None for an f
    without one), ``init_margin`` (after f) and ``tau`` (in effect now:
    the trained value once a checkpoint is loaded).
    """
    rows = []
    for name, m in pad_layers(model):
        rows.append(dict(
            layer=name,
            chain=m.chain.name if m.chain is not None else None,
            chain_index=m.chain_index,
            native_dilation=int(m.dilation[0]),
            dilations=list(m.abs_dilations),
            dilation_mode=m.dilation_mode,
            aggregation=m.aggregation,
            f=act_name(m.act_cfg),
            f_bound=_bound(m.prior.act),
            init_margin=round(float(m.init_margin), 6),
            tau=round(float(m.tau), 6)))
    return rows


def format_pad_report(rows: list[dict], title: str = 'PAD layers') -> str:
    """The rows of :func:`pad_report` as a plain-text table."""
    cols = [('layer', 'PAD layer'), ('chain', 'chain'),
            ('native_dilation', 'native d'), ('dilations', 'options (abs)'),
            ('aggregation', 'aggregation'), ('f', 'f'),
            ('f_bound', 'f bound'), ('tau', 'tau')]

    def cell(row, key):
        v = row[key]
        if key == 'dilations':
            return '(' + ', '.join(map(str, v)) + ')'
        if key == 'chain' and v is not None:
            return f'{v}[{row["chain_index"]}]'
        return f'{v:g}' if isinstance(v, float) else str(v)

    table = [[h for _, h in cols]] + [[cell(r, k) for k, _ in cols]
                                      for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(cols))]
    lines = ['  '.join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
             for line in table]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return f'{title} ({len(rows)}):\n' + '\n'.join(lines)


def build_pad_backbone(base_type: str | type, pad_cfg: dict | Sequence[dict],
                       **kwargs) -> nn.Module:
    """Build ``dict(type=base_type, **kwargs)`` from the current scope's
    ``MODELS`` and convert it with :func:`convert_to_pad`.

    Registered in mmengine's root ``MODELS`` as ``'PADBackbone'`` (the
    config key, see :mod:`pad_mm.registry`). It is a builder, not a
    wrapper class: it returns the converted base module itself, so the
    state-dict keys are the base module's (plus ``*.prior.*``).

    Raises:
        PADConfigError: ``base_type`` is not registered (field
            ``base_type``), or ``pad_cfg`` is bad (field ``pad_cfg...``).
    """
    if isinstance(base_type, str):
        with MODELS.switch_scope_and_registry(None) as registry:
            known = registry.get(base_type) is not None
    else:
        known = isinstance(base_type, type)
    if not known:
        raise PADConfigError('base_type', base_type,
                             'a registered backbone type of the config '
                             "scope, e.g. 'ResNetV1c'")
    chains = parse_pad_cfg(pad_cfg)  # bad settings fail before the build
    model = MODELS.build(dict(type=base_type, **kwargs))
    return convert_to_pad(model, chains)


#: The config key of :func:`build_pad_backbone`.
PADBackbone = build_pad_backbone
MODELS.register_module('PADBackbone', module=build_pad_backbone)
