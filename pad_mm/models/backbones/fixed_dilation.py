"""``FixedDilationBackbone``: any backbone with a fixed dilation on chosen
convs (the fixed-d controls of the ablation, configs/demo/ablation/).

mmseg's ``ResNet(dilations=...)`` dilates only the first 3x3 conv of a
``BasicBlock`` (``conv2`` keeps dilation 1), so "every 3x3 conv of layer4
at d = 2" cannot be said with its arguments. This builder builds
``dict(type=base_type, **kwargs)`` and sets ``dilation`` (and the matching
``padding``) of the convs whose names match ``layers``::

    backbone=dict(type='FixedDilationBackbone', base_type='ResNetV1c',
                  layers=['layer4.*.conv1', 'layer4.*.conv2'], dilation=2,
                  depth=18, ...)

The convs stay plain ``nn.Conv2d`` (no new parameters, the state-dict keys
are the base backbone's); only their dilation and padding change, so the
output sizes are unchanged.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import torch.nn as nn

from pad_mm.registry import MODELS

__all__ = ['FixedDilationBackbone', 'set_conv_dilation']


def set_conv_dilation(model: nn.Module, layers: str | Sequence[str],
                      dilation: int) -> list[str]:
    """Give the convs of ``model`` matched by ``layers`` (fnmatch patterns
    over module names) the dilation ``dilation`` and the padding
    ``dilation * (k - 1) // 2``. Returns the names of the changed convs.

    Raises:
        ValueError: ``dilation`` is not an int >= 1, a pattern matches no
            ``nn.Conv2d``, or a matched conv is not an odd square kernel
            > 1 padded "same" (``padding == dilation * (k - 1) // 2``).
    """
    if isinstance(dilation, bool) or not isinstance(dilation, int) or \
            dilation < 1:
        raise ValueError(f'dilation must be an int >= 1, got {dilation!r}')
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, Sequence) or not layers or not all(
            isinstance(p, str) and p for p in layers):
        raise ValueError('layers must be a non-empty pattern or list of '
                         f'patterns, got {layers!r}')
    convs = {n: m for n, m in model.named_modules()
             if isinstance(m, nn.Conv2d)}
    changed: list[str] = []
    for pattern in layers:
        hits = [n for n in convs if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise ValueError(f'layers: pattern {pattern!r} matches no '
                             f'nn.Conv2d of {type(model).__name__}; conv '
                             f'names look like {list(convs)[:6]}')
        for name in hits:
            if name in changed:
                continue
            conv = convs[name]
            k, d, p = conv.kernel_size, conv.dilation, conv.padding
            if k[0] != k[1] or k[0] % 2 == 0 or k[0] == 1 or \
                    d[0] != d[1] or isinstance(p, str) or \
                    p != (d[0] * (k[0] - 1) // 2, ) * 2:
                raise ValueError(
                    f'layers: conv {name!r} (kernel_size={k}, dilation={d}, '
                    f'padding={p}) is not an odd square kernel > 1 with '
                    'padding dilation*(k-1)//2; only such convs can be '
                    'dilated without changing the output size')
            conv.dilation = (dilation, dilation)
            conv.padding = (dilation * (k[0] - 1) // 2, ) * 2
            changed.append(name)
    return changed


def FixedDilationBackbone(base_type: str, layers: str | Sequence[str],
                          dilation: int, **kwargs) -> nn.Module:
    """Build ``dict(type=base_type, **kwargs)`` and set the dilation of its
    convs matched by ``layers`` to ``dilation`` (see
    :func:`set_conv_dilation`). Returns the base module itself. Shapes:
    as the base backbone."""
    if not isinstance(base_type, (str, type)):
        raise TypeError(f'base_type must be a registered type name, got '
                        f'{base_type!r}')
    model = MODELS.build(dict(type=base_type, **kwargs))
    set_conv_dilation(model, layers, dilation)
    return model


MODELS.register_module('FixedDilationBackbone', module=FixedDilationBackbone)
