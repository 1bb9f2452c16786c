"""Dilated Residual Networks (DRN) as an OpenMMLab backbone.

Yu, Koltun, Funkhouser, "Dilated Residual Networks", CVPR 2017. The module
tree follows the authors' reference ``drn.py`` (github.com/fyu/drn) name for
name, so the official ImageNet checkpoints (``drn_c_26-ddedf421.pth``,
``drn_d_54-0e0534ff.pth``, ...) load without any key mapping; their
classifier (``fc.*``, a 1x1 conv) is not part of the backbone and is skipped.

Registered as ``'DRN'`` in the mmseg **and** mmpretrain ``MODELS`` registries
(the same class)::

    backbone=dict(
        type='DRN',
        arch='D-54',               # 'C-26', 'C-42', 'C-58', 'D-22', 'D-38',
                                   # 'D-54', 'D-105'
        out_indices=(2, 7),        # 0-based over layer1..layer8
        output_stride=8,           # 8 (native) or 16
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/drn_d_54-0e0534ff.pth'))

Stages (C = arch 'C-*', D = arch 'D-*'; B = BasicBlock, BN = Bottleneck)::

    name    C: modules          D: modules           stride  dilation
                                                     (os 8 / os 16)
    stem    conv1, bn1, relu    layer0 (conv,bn,relu) 1
    layer1  B x1, 16 ch         conv x1, 16 ch        1       1
    layer2  B x1, 32 ch         conv x1, 32 ch        2       1
    layer3  block, 64*e ch      block, 64*e ch        4       1
    layer4  block, 128*e ch     block, 128*e ch       8       1
    layer5  block, 256*e ch     block, 256*e ch       8 / 16  2 / 1
    layer6  block, 512*e ch     block, 512*e ch       8 / 16  4 / 2
    layer7  B (no residual)     conv x n, 512 ch      8 / 16  2 / 1
    layer8  B (no residual)     conv x n, 512 ch      8 / 16  1 / 1

(e = 1 for BasicBlock archs, 4 for Bottleneck archs.) ``output_stride=16``
gives layer5 a stride of 2 and halves every later dilation (minimum 1),
the DeepLabV3+ setting of the PAD-Nets paper (Table 8). ``layer_channels``
lists the channels of layer1..layer8 for the chosen arch, e.g. D-54:
``(16, 32, 256, 512, 1024, 2048, 512, 512)``; C-26:
``(16, 32, 64, 128, 256, 512, 512, 512)``; ``out_channels`` those of the
returned maps (``out_indices`` order).

Conv names for PAD placement (``PADBackbone`` fnmatch patterns):
arch C: ``layer8.0.conv1``, ``layer8.0.conv2`` (pattern ``'layer8.*.conv?'``);
arch D: the convs of layer7/layer8 are ``layer7.0``, ``layer7.3``, ... and
``layer8.0``, ... (pattern ``'layer8.*'``; ``'layer7.*'`` matches only
convs because BN/ReLU are not ``nn.Conv2d``). Bottleneck 3x3 convs are
``layerN.i.conv2``.

Use in DeepLabV3+ (mmseg): the low-level (stride 4) input of
``DepthwiseSeparableASPPHead`` is its ``inputs[0]``, so put layer3 first::

    backbone=dict(type='DRN', arch='D-54', out_indices=(2, 7),
                  output_stride=16),
    decode_head=dict(in_index=1, in_channels=512, c1_in_channels=256, ...)

Use in mmpretrain: ``out_indices=(7,)`` (default) + ``GlobalAveragePooling``
neck + ``LinearClsHead(in_channels=512)`` is the official classifier
(avgpool + 1x1-conv fc).

Weights: without ``init_cfg`` the weights get the reference initialisation
(He-normal fan-out convs, BN weight 1 / bias 0) when the module is built.
``init_cfg=dict(type='Pretrained', checkpoint=PATH[, prefix=P])`` loads
either an official DRN file (keys ``layer1.0...``) or an mmpretrain
classifier checkpoint (keys ``backbone.layer1...``, detected automatically
when no ``prefix`` is given); the old-style ``pretrained=PATH`` argument
(what mmseg's ``EncoderDecoder(pretrained=...)`` passes) means the same. A
missing local file raises ``FileNotFoundError`` naming the path. Published
parameter counts with the 1000-class classifier (DRN README): C-26 21.1M,
C-42 31.2M, C-58 41.6M, D-22 16.4M, D-38 26.5M, D-54 35.8M, D-105 54.8M.

Shapes: [N, 3, H, W] -> tuple of [N, out_channels[i], H / s_i, W / s_i] for
i in ``out_indices`` (s_i the stride column above; the strided convs round
up, e.g. 33 px -> 17 -> 9 -> 5).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.runner.checkpoint import load_state_dict
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from pad_mm.registry import MODELS

from ..layers.pad_conv import PAD_BUFFERS
from .norm_eval import NormEvalMixin
from .pretrained import PRETRAINED_TYPES, read_pretrained_state

__all__ = ['DRN', 'DRNBasicBlock', 'DRNBottleneck', 'DRN_ARCHS']


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1,
             dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation,
                     dilation=dilation, bias=False)


class _DRNBlock(nn.Module):
    """What DRN's two blocks share: the constructor (``build`` makes the
    convs, then the identity path is kept) and the residual ending of
    ``forward``."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None,
                 dilation: tuple[int, int] = (1, 1), residual: bool = True,
                 norm_cfg: dict | None = None) -> None:
        super().__init__()
        self.build(inplanes, planes, stride, dilation,
                   norm_cfg or dict(type='BN'))
        self.downsample = downsample
        self.stride = stride
        self.residual = residual

    def build(self, inplanes: int, planes: int, stride: int,
              dilation: tuple[int, int], norm_cfg: dict) -> None:
        raise NotImplementedError

    def add_identity(self, out: Tensor, x: Tensor) -> Tensor:
        """``relu(out + identity)``; ``relu(out)`` when not residual."""
        if self.residual:
            identity = x if self.downsample is None else self.downsample(x)
            out = out + identity
        return self.relu(out)


class DRNBasicBlock(_DRNBlock):
    """Two 3x3 convs (``conv1`` strided, dilations ``dilation[0]``,
    ``dilation[1]``); ``residual=False`` drops the identity path (the
    degridding layers 7/8 of DRN-C). Shapes: [N, C_in, H, W] ->
    [N, planes, H/stride, W/stride]."""
    expansion = 1

    def build(self, inplanes: int, planes: int, stride: int,
              dilation: tuple[int, int], norm_cfg: dict) -> None:
        self.conv1 = _conv3x3(inplanes, planes, stride, dilation[0])
        self.bn1 = build_norm_layer(norm_cfg, planes)[1]
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes, 1, dilation[1])
        self.bn2 = build_norm_layer(norm_cfg, planes)[1]

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.add_identity(self.bn2(self.conv2(out)), x)


class DRNBottleneck(_DRNBlock):
    """1x1 -> 3x3 (strided, dilation ``dilation[1]``) -> 1x1 (x4 channels)
    with identity. Shapes: [N, C_in, H, W] -> [N, 4*planes, H/s, W/s]."""
    expansion = 4

    def build(self, inplanes: int, planes: int, stride: int,
              dilation: tuple[int, int], norm_cfg: dict) -> None:
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, planes)[1]
        self.conv2 = _conv3x3(planes, planes, stride, dilation[1])
        self.bn2 = build_norm_layer(norm_cfg, planes)[1]
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = build_norm_layer(norm_cfg, planes * 4)[1]
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.add_identity(self.bn3(self.conv3(out)), x)


# arch -> (block of layers 3-6, blocks per layer1..layer8, stem/tail kind)
DRN_ARCHS: dict[str, tuple[type, tuple[int, ...], str]] = {
    'C-26': (DRNBasicBlock, (1, 1, 2, 2, 2, 2, 1, 1), 'C'),
    'C-42': (DRNBasicBlock, (1, 1, 3, 4, 6, 3, 1, 1), 'C'),
    'C-58': (DRNBottleneck, (1, 1, 3, 4, 6, 3, 1, 1), 'C'),
    'D-22': (DRNBasicBlock, (1, 1, 2, 2, 2, 2, 1, 1), 'D'),
    'D-38': (DRNBasicBlock, (1, 1, 3, 4, 6, 3, 1, 1), 'D'),
    'D-54': (DRNBottleneck, (1, 1, 3, 4, 6, 3, 1, 1), 'D'),
    'D-105': (DRNBottleneck, (1, 1, 3, 4, 23, 3, 1, 1), 'D'),
}
CHANNELS = (16, 32, 64, 128, 256, 512, 512, 512)
# output_stride -> (stride of layer5, dilations of layer5..layer8)
_OS_SETTINGS = {8: (1, (2, 4, 2, 1)), 16: (2, (1, 2, 1, 1))}


class DRN(NormEvalMixin, BaseModule):
    """Dilated Residual Network backbone (see the module docstring).

    Args:
        arch: one of ``DRN_ARCHS``: 'C-26', 'C-42', 'C-58', 'D-22', 'D-38',
            'D-54', 'D-105'.
        out_indices: indices (0..7) of layer1..layer8 whose outputs are
            returned, in this order; negative indices count from the end.
        output_stride: 8 (the published DRN) or 16 (layer5 strided, later
            dilations halved).
        norm_cfg: mmcv norm layer config (``BN``, ``SyncBN``, ...).
        norm_eval: keep the norm layers in eval mode while training.
        pretrained: deprecated spelling of
            ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)``.
        init_cfg: ``None`` (reference init at build time) or a
            ``Pretrained`` dict (``checkpoint``, optional ``prefix``).

    Shapes: [N, 3, H, W] -> tuple of [N, C_i, ceil(H / s_i), ceil(W / s_i)].
    """

    def __init__(self,
                 arch: str = 'C-26',
                 out_indices: Sequence[int] = (7, ),
                 output_stride: int = 8,
                 norm_cfg: dict | None = None,
                 norm_eval: bool = False,
                 pretrained: str | None = None,
                 init_cfg: dict | list | None = None) -> None:
        if arch not in DRN_ARCHS:
            raise ValueError(f'DRN: arch must be one of {list(DRN_ARCHS)}, '
                             f'got {arch!r}')
        if output_stride not in _OS_SETTINGS:
            raise ValueError(f'DRN: output_stride must be one of '
                             f'{list(_OS_SETTINGS)}, got {output_stride!r}')
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        if not isinstance(out_indices, Sequence) or not out_indices:
            raise ValueError('DRN: out_indices must be a non-empty sequence '
                             f'of ints in [-8, 7], got {out_indices!r}')
        indices = []
        for i in out_indices:
            if isinstance(i, bool) or not isinstance(i, int) or \
                    not -8 <= i <= 7:
                raise ValueError('DRN: out_indices must be ints in [-8, 7] '
                                 '(0-based over layer1..layer8), got '
                                 f'{out_indices!r}')
            indices.append(i % 8)
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('DRN: give either pretrained or init_cfg, '
                                 'not both')
            if not isinstance(pretrained, str):
                raise TypeError('DRN: pretrained must be a checkpoint path, '
                                f'got {pretrained!r}')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        self.arch = arch
        self.out_indices = tuple(indices)
        self.output_stride = output_stride
        self.norm_cfg = dict(norm_cfg or dict(type='BN', requires_grad=True))
        self.norm_eval = norm_eval

        block, layers, kind = DRN_ARCHS[arch]
        self.kind = kind
        c = CHANNELS
        s5, (d5, d6, d7, d8) = _OS_SETTINGS[output_stride]
        self.inplanes = c[0]
        if kind == 'C':
            self.conv1 = nn.Conv2d(3, c[0], 7, padding=3, bias=False)
            self.bn1 = self._norm(c[0])
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = self._make_layer(DRNBasicBlock, c[0], layers[0])
            self.layer2 = self._make_layer(DRNBasicBlock, c[1], layers[1],
                                           stride=2)
        else:
            self.layer0 = nn.Sequential(
                nn.Conv2d(3, c[0], 7, padding=3, bias=False),
                self._norm(c[0]), nn.ReLU(inplace=True))
            self.layer1 = self._make_conv_layers(c[0], layers[0])
            self.layer2 = self._make_conv_layers(c[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, c[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, c[3], layers[3], stride=2)
        self.layer5 = self._make_layer(block, c[4], layers[4], stride=s5,
                                       dilation=d5)
        self.layer6 = self._make_layer(block, c[5], layers[5], dilation=d6)
        if kind == 'C':
            self.layer7 = self._make_layer(DRNBasicBlock, c[6], layers[6],
                                           dilation=d7, residual=False)
            self.layer8 = self._make_layer(DRNBasicBlock, c[7], layers[7],
                                           dilation=d8, residual=False)
        else:
            self.layer7 = self._make_conv_layers(c[6], layers[6], dilation=d7)
            self.layer8 = self._make_conv_layers(c[7], layers[7], dilation=d8)
        e = block.expansion
        self.layer_channels = (c[0], c[1], c[2] * e, c[3] * e, c[4] * e,
                               c[5] * e, c[6], c[7])
        self.out_channels = tuple(self.layer_channels[i]
                                  for i in self.out_indices)
        self._reference_init()

    # -- construction (mirrors the reference drn.py) -----------------------
    def _norm(self, channels: int) -> nn.Module:
        return build_norm_layer(self.norm_cfg, channels)[1]

    def _make_layer(self, block: type, planes: int, blocks: int,
                    stride: int = 1, dilation: int = 1,
                    residual: bool = True) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1,
                          stride=stride, bias=False),
                self._norm(planes * block.expansion))
        # reference: new_level=False for the dilated layers, so the first
        # block uses ``dilation`` in both convs
        mods = [block(self.inplanes, planes, stride, downsample,
                      dilation=(dilation, dilation), residual=residual,
                      norm_cfg=self.norm_cfg)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            mods.append(block(self.inplanes, planes,
                              dilation=(dilation, dilation),
                              residual=residual, norm_cfg=self.norm_cfg))
        return nn.Sequential(*mods)

    def _make_conv_layers(self, channels: int, convs: int, stride: int = 1,
                          dilation: int = 1) -> nn.Sequential:
        mods: list[nn.Module] = []
        for i in range(convs):
            mods += [
                nn.Conv2d(self.inplanes, channels, 3,
                          stride=stride if i == 0 else 1, padding=dilation,
                          dilation=dilation, bias=False),
                self._norm(channels),
                nn.ReLU(inplace=True)
            ]
            self.inplanes = channels
        return nn.Sequential(*mods)

    def _reference_init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0, math.sqrt(2. / n))
            elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
                if m.weight is not None:
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    # -- weights -----------------------------------------------------------
    def init_weights(self) -> None:
        """Load ``init_cfg=dict(type='Pretrained', ...)`` (see the module
        docstring); other init_cfg types are applied by mmengine."""
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else \
            [self.init_cfg] if self.init_cfg else []
        pretrained = [c for c in cfgs if c.get('type') in PRETRAINED_TYPES]
        others = [c for c in cfgs if c.get('type') not in PRETRAINED_TYPES]
        if getattr(self, '_is_init', False):
            return
        init_cfg, self.init_cfg = self.init_cfg, (others or None)
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        for cfg in pretrained:
            self.load_pretrained(cfg['checkpoint'], cfg.get('prefix'))
        self._is_init = True

    def load_pretrained(self, checkpoint: str,
                        prefix: str | None = None) -> tuple[list, list]:
        """Load DRN weights from ``checkpoint`` (a local path or URL).

        Accepts the official DRN layout (``layer1.0.conv1.weight``, ...,
        ``fc.*`` ignored), an optional ``module.`` prefix, and mmpretrain /
        mmseg checkpoints (``state_dict`` with ``backbone.`` keys). Returns
        (missing keys, unexpected keys) and logs them.

        Raises:
            FileNotFoundError: ``checkpoint`` is a local path that does not
                exist.
            ValueError: the file has no DRN weights under ``prefix``.
        """
        state = read_pretrained_state(
            checkpoint, f'DRN-{self.arch}',
            'the official DRN ImageNet weights (e.g. drn_c_26-ddedf421.pth, '
            'drn_d_54-0e0534ff.pth) or a checkpoint of the ImageNet config')
        if prefix is None and any(k.startswith('backbone.') for k in state):
            prefix = 'backbone.'
        if prefix:
            state = {k[len(prefix):]: v for k, v in state.items()
                     if k.startswith(prefix)}
        state = {k: v for k, v in state.items() if not k.startswith('fc.')}
        own = self.state_dict()
        if not any(k in own for k in state):
            raise ValueError(
                f'DRN-{self.arch}: {checkpoint!r} holds no DRN weights'
                + (f' under prefix {prefix!r}' if prefix else '') +
                f'; keys look like {list(state)[:5]}')
        # a PAD layer's tau / options buffers are its own (never missing)
        missing = [k for k in own if k not in state
                   and k.rsplit('.', 1)[-1] not in PAD_BUFFERS]
        unexpected = [k for k in state if k not in own]
        load_state_dict(self, state, strict=False, logger='current')
        print_log(f'DRN-{self.arch}: loaded {checkpoint} '
                  f'({len(own) - len(missing)} tensors; {len(missing)} '
                  f'missing, {len(unexpected)} unexpected)',
                  logger='current')
        return missing, unexpected

    # -- forward -----------------------------------------------------------
    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """[N, 3, H, W] -> tuple of the layer outputs in ``out_indices``."""
        if self.kind == 'C':
            x = self.relu(self.bn1(self.conv1(x)))
        else:
            x = self.layer0(x)
        outs = []
        for i in range(8):
            x = getattr(self, f'layer{i + 1}')(x)
            outs.append(x)
        return tuple(outs[i] for i in self.out_indices)


MODELS.register_module('DRN', module=DRN)
