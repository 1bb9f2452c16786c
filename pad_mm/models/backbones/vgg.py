"""VGG backbone for FCN (Long et al. 2015), fc6/fc7 as convolutions.

Module names follow the Caffe / FCN layer names (``conv1_1`` ...
``conv5_3``, ``fc6``, ``fc7``), so PAD placement reads like the paper
(``layers=['conv5_*']`` = conv5-1..conv5-3).

Difference to the Caffe FCN: instead of padding conv1_1 by 100 pixels and
cropping the score maps, fc6 (7x7) uses 'same' padding 3 and the pools use
``ceil_mode=True``; every feature map then has size ceil(H / stride) and the
FCN heads crop their upsampled scores to the skip / image size (offset 0).
The weights are the same as VGG-16's, so ImageNet checkpoints load.
"""
from __future__ import annotations

import torch.nn as nn
from mmengine.model import BaseModule
from pad_mm.registry import MODELS
from torch import Tensor

from .pretrained import load_pretrained, pretrained_checkpoint

__all__ = ['VGG', 'VGG_OUTPUTS', 'convert_vgg_checkpoint']

# output names in order; out_indices index into this tuple
VGG_OUTPUTS = ('pool1', 'pool2', 'pool3', 'pool4', 'pool5', 'fc7')

# number of 3x3 convs per stage; channels are 64, 128, 256, 512, 512
ARCH = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3),
        19: (2, 2, 4, 4, 4)}
STAGE_CHANNELS = (64, 128, 256, 512, 512)

EXPECTED_CKPT = (
    'an ImageNet VGG state dict: torchvision\'s vgg16-397923af.pth '
    '(keys features.N.*, classifier.0/3.*), mmpretrain\'s VGG-16 checkpoint '
    '(backbone.features.N.conv.*, use prefix=\'backbone.\') or this '
    'module\'s own keys (conv1_1.*, ..., fc6.*, fc7.*)')


def convert_vgg_checkpoint(state: dict, depth: int = 16,
                           with_fc: bool = True) -> dict:
    """Map torchvision / mmpretrain VGG keys to :class:`VGG` keys.

    fc6 / fc7 ``Linear`` weights [4096, 25088] / [4096, 4096] become
    [4096, 512, 7, 7] / [4096, 4096, 1, 1] conv weights. Keys already in
    this module's layout pass unchanged; fc8 / head keys are dropped.
    """
    if any(k.startswith('conv1_1.') for k in state):
        return state
    names = [f'conv{s + 1}_{i + 1}' for s, n in enumerate(ARCH[depth])
             for i in range(n)]
    mmpretrain = any('.conv.weight' in k for k in state)
    conv_idx = []  # positions of the convs in the 'features' Sequential
    pos = 0
    for n in ARCH[depth]:
        for _ in range(n):
            conv_idx.append(pos)
            pos += 1 if mmpretrain else 2  # torchvision: conv, relu
        pos += 1  # max pool
    out = {}
    for name, idx in zip(names, conv_idx):
        src = f'features.{idx}.conv.' if mmpretrain else f'features.{idx}.'
        for p in ('weight', 'bias'):
            if src + p in state:
                out[f'{name}.{p}'] = state[src + p]
    if with_fc:
        for name, idx, shape in (('fc6', 0, (4096, 512, 7, 7)),
                                 ('fc7', 3, (4096, 4096, 1, 1))):
            w = state.get(f'classifier.{idx}.weight')
            if w is not None:
                out[f'{name}.weight'] = w.reshape(shape)
                out[f'{name}.bias'] = state[f'classifier.{idx}.bias']
    return out


@MODELS.register_module(task='seg')
class VGG(BaseModule):
    """VGG (Simonyan & Zisserman 2014) as an FCN backbone.

    Args:
        depth: 11, 13, 16 or 19.
        with_fc: build fc6 (7x7 conv, 512->4096) and fc7 (1x1 conv,
            4096->4096) with ReLU and dropout, as FCN's "convolutionalized"
            classifier.
        fc_dropout: dropout probability after fc6 and fc7 (drop6/drop7).
        out_indices: indices into ``VGG_OUTPUTS`` = ('pool1', 'pool2',
            'pool3', 'pool4', 'pool5', 'fc7').
        init_cfg: e.g. ``dict(type='Pretrained', checkpoint='pretrain/
            vgg16-397923af.pth')``; see ``convert_vgg_checkpoint`` for the
            accepted formats. A missing file raises ``FileNotFoundError``
            in ``init_weights`` (before training starts).

    Shapes: [N, 3, H, W] -> tuple of the selected outputs, ``poolK``
    [N, C_K, ceil(H / 2^K), ceil(W / 2^K)], ``fc7`` [N, 4096, ceil(H / 32),
    ceil(W / 32)].
    """

    def __init__(self,
                 depth: int = 16,
                 with_fc: bool = True,
                 fc_dropout: float = 0.5,
                 out_indices: tuple[int, ...] = (2, 3, 5),
                 init_cfg: dict | list | None = None) -> None:
        if depth not in ARCH:
            raise ValueError(f'VGG depth must be one of {sorted(ARCH)}, got '
                             f'{depth!r}')
        n_out = len(VGG_OUTPUTS) if with_fc else len(VGG_OUTPUTS) - 1
        if not out_indices or any(
                not isinstance(i, int) or not 0 <= i < n_out
                for i in out_indices):
            raise ValueError(
                f'VGG out_indices must be indices into '
                f'{VGG_OUTPUTS[:n_out]} (0..{n_out - 1}), got '
                f'{out_indices!r}')
        if not 0 <= fc_dropout < 1:
            raise ValueError(f'fc_dropout must be in [0, 1), got '
                             f'{fc_dropout!r}')
        super().__init__(init_cfg=init_cfg)
        self._pretrained = pretrained_checkpoint(init_cfg)
        self.depth = depth
        self.with_fc = with_fc
        self.out_indices = tuple(out_indices)
        in_ch = 3
        self.stage_convs: list[list[str]] = []
        for s, (n, ch) in enumerate(zip(ARCH[depth], STAGE_CHANNELS)):
            names = []
            for i in range(n):
                name = f'conv{s + 1}_{i + 1}'
                self.add_module(name, nn.Conv2d(in_ch, ch, 3, padding=1))
                names.append(name)
                in_ch = ch
            self.stage_convs.append(names)
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.relu = nn.ReLU(inplace=True)
        if with_fc:
            self.fc6 = nn.Conv2d(512, 4096, 7, padding=3)
            self.fc7 = nn.Conv2d(4096, 4096, 1)
            self.drop = nn.Dropout(fc_dropout) if fc_dropout > 0 else \
                nn.Identity()

    def init_weights(self) -> None:
        if self._pretrained is None:
            super().init_weights()
            if self.init_cfg is None:  # torchvision's VGG initialisation
                for m in self.modules():
                    if isinstance(m, nn.Conv2d) and m.bias is not None:
                        nn.init.kaiming_normal_(
                            m.weight, mode='fan_out', nonlinearity='relu')
                        nn.init.zeros_(m.bias)
            return
        # PAD priors start from their own initialisation; the checkpoint
        # then overwrites the ones it has (a PAD checkpoint keeps its
        # trained priors, an ImageNet one leaves them at the init)
        for m in self.modules():
            if m is not self and hasattr(m, 'init_weights') and hasattr(
                    m, 'prior'):
                m.init_weights()
        load_pretrained(
            self, self._pretrained, EXPECTED_CKPT,
            lambda sd: convert_vgg_checkpoint(sd, self.depth, self.with_fc))

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        outs = []
        for names in self.stage_convs:
            for name in names:
                x = self.relu(getattr(self, name)(x))
            x = self.pool(x)
            outs.append(x)
        if self.with_fc:
            x = self.drop(self.relu(self.fc6(x)))
            x = self.drop(self.relu(self.fc7(x)))
            outs.append(x)
        return tuple(outs[i] for i in self.out_indices)

