"""Place PAD layers into any model by module-name pattern.

``convert_to_pad(model, pad_cfg)`` replaces the matched ``nn.Conv2d``
modules by :class:`PADConv2d` (copying their weights) and links each group
into an aggregation chain. ``PADBackbone`` does the same from a config::

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

import copy
import fnmatch
from collections.abc import Sequence

import torch.nn as nn
from mmengine.registry import MODELS

from .layers.pad_conv import PADConv2d, link_chain

__all__ = ['convert_to_pad', 'PADBackbone', 'PAD_CFG_KEYS']

# keys of one pad_cfg entry besides 'layers' and 'name', all passed to
# PADConv2d
LAYER_KEYS = ('dilations', 'tau', 'train_mode', 'eval_mode', 'aggregation',
              'act_cfg', 'init_dilation', 'init_margin', 'impl')
PAD_CFG_KEYS = ('layers', 'name') + LAYER_KEYS


def _is_plain_conv(m: nn.Module) -> bool:
    if not isinstance(m, nn.Conv2d) or isinstance(m, PADConv2d):
        return False
    if type(m).forward is nn.Conv2d.forward:
        return True
    # mmcv's Conv2d wrapper only adds empty-tensor support
    return type(m).__module__ == 'mmcv.cnn.bricks.wrappers' and \
        type(m).__name__ == 'Conv2d'


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition('.')
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, module)


def _to_pad(conv: nn.Conv2d, layer_cfg: dict) -> PADConv2d:
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
        **layer_cfg)
    pad.to(device=conv.weight.device, dtype=conv.weight.dtype)
    pad.weight.data.copy_(conv.weight.data)
    if conv.bias is not None:
        pad.bias.data.copy_(conv.bias.data)
    pad.train(conv.training)
    return pad


def _normalise(pad_cfg: dict | Sequence[dict]) -> list[dict]:
    if isinstance(pad_cfg, dict):
        entries = [pad_cfg]
    elif isinstance(pad_cfg, Sequence) and not isinstance(pad_cfg, str):
        entries = list(pad_cfg)
    else:
        raise TypeError('pad_cfg must be a dict or a list of dicts, got '
                        f'{pad_cfg!r}')
    if not entries:
        raise ValueError('pad_cfg must not be an empty list')
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise TypeError(f'pad_cfg[{i}] must be a dict, got {entry!r}')
        unknown = sorted(set(entry) - set(PAD_CFG_KEYS))
        if unknown:
            raise ValueError(f'pad_cfg[{i}] has unknown keys {unknown}; '
                             f'allowed keys are {list(PAD_CFG_KEYS)}')
        if 'layers' not in entry:
            raise ValueError(f"pad_cfg[{i}] needs 'layers': a module-name "
                             "pattern or a list of them, e.g. "
                             "'layer4.*.conv2'")
        layers = entry['layers']
        if isinstance(layers, str):
            layers = [layers]
        if not isinstance(layers, Sequence) or not layers or not all(
                isinstance(p, str) and p for p in layers):
            raise ValueError(f"pad_cfg[{i}].layers must be a non-empty "
                             f"pattern or list of patterns, got "
                             f"{entry['layers']!r}")
        entry = dict(entry, layers=list(layers))
        entry.setdefault('name', ','.join(layers))
        out.append(entry)
    return out


def convert_to_pad(model: nn.Module,
                   pad_cfg: dict | Sequence[dict]) -> nn.Module:
    """Replace the convs of ``model`` matched by ``pad_cfg`` by PAD layers.

    Args:
        model: any module; converted in place and returned.
        pad_cfg: one chain spec or a list of them. A spec is a dict with
            ``layers`` (fnmatch patterns over the names of the model's
            ``nn.Conv2d`` modules, e.g. ``'layer4.*.conv2'``), an optional
            chain ``name`` and any of the :class:`PADConv2d` keyword
            arguments (``dilations``, ``aggregation``, ``tau``, ...).
            The matched convs form one aggregation chain in module order.

    Raises:
        ValueError: a pattern matches no conv, a matched conv cannot be
            made adaptive (e.g. 1x1), or a conv is matched by two specs.
    """
    entries = _normalise(pad_cfg)
    convs = [(n, m) for n, m in model.named_modules() if _is_plain_conv(m)]
    conv_names = [n for n, _ in convs]
    taken: dict[str, int] = {}
    for i, entry in enumerate(entries):
        layer_cfg = {k: entry[k] for k in LAYER_KEYS if k in entry}
        matched: list[str] = []
        for pattern in entry['layers']:
            hits = [n for n in conv_names if fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                examples = conv_names[:6] + (['...'] if len(conv_names) > 6
                                             else [])
                raise ValueError(
                    f'pad_cfg[{i}].layers: pattern {pattern!r} matches no '
                    f'nn.Conv2d of {type(model).__name__}; conv names look '
                    f'like {examples}')
            matched += [n for n in hits if n not in matched]
        matched.sort(key=conv_names.index)
        pads = []
        for name in matched:
            if name in taken:
                raise ValueError(
                    f'pad_cfg[{i}].layers: conv {name!r} is already placed '
                    f'by pad_cfg[{taken[name]}]')
            taken[name] = i
            pad = _to_pad(model.get_submodule(name), layer_cfg)
            if not pad.adaptive:
                raise ValueError(
                    f'pad_cfg[{i}].layers: conv {name!r} cannot be made '
                    f'adaptive ({pad._non_adaptive_reason()}); only odd '
                    'square kernels > 1 with padding dilation*(k-1)//2 can')
            _set_submodule(model, name, pad)
            pads.append(pad)
        link_chain(pads, entry['name'])
    return model


def PADBackbone(base_type: str, pad_cfg: dict | Sequence[dict],
                **kwargs) -> nn.Module:
    """Build ``dict(type=base_type, **kwargs)`` and convert it with
    :func:`convert_to_pad`. Returns the converted module itself (not a
    wrapper), so its state-dict keys are the base module's."""
    if not isinstance(base_type, (str, type)):
        raise TypeError(f'base_type must be a registered type name, got '
                        f'{base_type!r}')
    model = MODELS.build(dict(type=base_type, **kwargs))
    return convert_to_pad(model, copy.deepcopy(pad_cfg))


MODELS.register_module('PADBackbone', module=PADBackbone)
