"""Aligned Xception-65, the DeepLabV3+ backbone (Chen et al. 2018).

Structure of TF DeepLab's ``xception_65`` (entry flow: stem + 3 blocks of
128, 256, 728 channels with stride 2; middle flow: 16 blocks of 728;
exit flow: a (728, 1024, 1024) block with stride 2 and a (1536, 1536, 2048)
block without skip), every separable conv = depthwise 3x3 + BN + pointwise
1x1 + BN, ReLU before each separable conv except in the last block where
ReLU follows the depthwise and the pointwise BN ("aligned" Xception).

Module and state-dict names are those of timm's ``xception65``
(``stem.0.conv``, ``blocks.<i>.stack.conv<j>.conv_dw`` ...), so its
ImageNet checkpoint (ported from the TF DeepLab model zoo) loads as is:
``init_cfg=dict(type='Pretrained', checkpoint='pretrain/xception65.pth')``.

Block indices: entry flow ``blocks.0-2``, middle flow ``blocks.3-18``, exit
flow ``blocks.19-20``. With ``output_stride=16`` the stride of block 19 is
removed and block 20 is dilated by 2 (as timm and TF DeepLab do).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from pad_mm.registry import MODELS
from torch import Tensor

from .norm_eval import NormEvalMixin
from .pretrained import load_pretrained, pretrained_checkpoint

__all__ = ['Xception65', 'XCEPTION65_BLOCKS']

# (in, out channels of the 3 separable convs, stride, skip, start_with_relu)
XCEPTION65_BLOCKS = (
    [(64, (128, 128, 128), 2, True, True),
     (128, (256, 256, 256), 2, True, True),
     (256, (728, 728, 728), 2, True, True)] +
    [(728, (728, 728, 728), 1, True, True)] * 16 +
    [(728, (728, 1024, 1024), 2, True, True),
     (1024, (1536, 1536, 2048), 1, False, False)])

ENTRY_FLOW = range(0, 3)
MIDDLE_FLOW = range(3, 19)
EXIT_FLOW = range(19, 21)

EXPECTED_CKPT = ("timm's xception65 ImageNet state dict (keys stem.0.conv."
                 "weight, blocks.<i>.stack.conv<j>.conv_dw.weight, ..., "
                 "e.g. torch.save(timm.create_model('xception65.tf_in1k', "
                 "pretrained=True).state_dict(), 'pretrain/xception65.pth'))")


class ConvBNAct(nn.Module):
    """conv -> BN (-> ReLU). Names: conv, bn (timm's ConvNormAct)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int,
                 stride: int, norm_cfg: dict, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride,
                              padding=kernel_size // 2, bias=False)
        self.bn = build_norm_layer(norm_cfg, out_ch)[1]
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 (stride, dilation) + BN (+ReLU) + pointwise 1x1 + BN
    (+ReLU). [N, C_in, H, W] -> [N, C_out, H / stride, W / stride]."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, dilation: int,
                 norm_cfg: dict, with_act: bool) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(in_ch, in_ch, 3, stride, padding=dilation,
                                 dilation=dilation, groups=in_ch, bias=False)
        self.bn_dw = build_norm_layer(norm_cfg, in_ch)[1]
        self.act_dw = nn.ReLU(inplace=True) if with_act else nn.Identity()
        self.conv_pw = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.bn_pw = build_norm_layer(norm_cfg, out_ch)[1]
        self.act_pw = nn.ReLU(inplace=True) if with_act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.act_dw(self.bn_dw(self.conv_dw(x)))
        return self.act_pw(self.bn_pw(self.conv_pw(x)))


class XceptionBlock(nn.Module):
    """Three separable convs (the last one strided) + residual."""

    def __init__(self, in_ch: int, out_chs: Sequence[int], stride: int,
                 dilation: int, skip: bool, start_with_relu: bool,
                 norm_cfg: dict) -> None:
        super().__init__()
        self.skip = skip
        self.shortcut = ConvBNAct(in_ch, out_chs[-1], 1, stride, norm_cfg,
                                  act=False) if skip and (
                                      in_ch != out_chs[-1] or stride != 1) \
            else None
        self.stack = nn.Sequential()
        for i in range(3):
            if start_with_relu:
                self.stack.add_module(f'act{i + 1}', nn.ReLU(inplace=i > 0))
            self.stack.add_module(
                f'conv{i + 1}',
                SeparableConv2d(in_ch, out_chs[i], stride if i == 2 else 1,
                                dilation, norm_cfg,
                                with_act=not start_with_relu))
            in_ch = out_chs[i]

    def forward(self, x: Tensor,
                with_tap: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """``with_tap``: also return the input of the last separable conv
        (the DeepLabV3+ low-level feature of block 1)."""
        y = x
        tap = None
        for name, m in self.stack.named_children():
            if with_tap and name == 'conv3':
                tap = y
            y = m(y)
        if self.skip:
            y = y + (self.shortcut(x) if self.shortcut is not None else x)
        return (y, tap) if with_tap else y


@MODELS.register_module(task='seg')
class Xception65(NormEvalMixin, BaseModule):
    """Aligned Xception-65 for DeepLabV3+.

    Args:
        output_stride: 8, 16 or 32.
        out_indices: indices into the outputs (0) low-level feature, input
            of the last separable conv of block 1 [N, 256, H/4, W/4];
            (1) entry flow output [N, 728, H/16, W/16]; (2) middle flow
            output [N, 728, H/os', ...]; (3) exit flow output
            [N, 2048, H/os, W/os] (os = output_stride, os' = min(os, 16)).
        norm_cfg: norm layer config (BN eps 1e-3 as TF).
        norm_eval: keep the BN layers in eval mode during training (with
            ``norm_cfg.requires_grad=False``: no BN fine-tuning).
        init_cfg: e.g. ``dict(type='Pretrained', checkpoint=
            'pretrain/xception65.pth')``; a missing file raises
            ``FileNotFoundError`` in ``init_weights``.

    Shapes: [N, 3, H, W] -> tuple of the selected outputs.
    """

    def __init__(self,
                 output_stride: int = 16,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 norm_cfg: dict = dict(type='BN', eps=1e-3,
                                       requires_grad=True),
                 norm_eval: bool = False,
                 init_cfg: dict | list | None = None) -> None:
        if output_stride not in (8, 16, 32):
            raise ValueError(f'Xception65 output_stride must be one of '
                             f'[8, 16, 32], got {output_stride!r}')
        if not out_indices or any(i not in range(4) for i in out_indices):
            raise ValueError(f'Xception65 out_indices must be indices in '
                             f'0..3, got {out_indices!r}')
        super().__init__(init_cfg=init_cfg)
        self._pretrained = pretrained_checkpoint(init_cfg)
        self.output_stride = output_stride
        self.out_indices = tuple(out_indices)
        self.norm_eval = norm_eval
        self.stem = nn.Sequential(
            ConvBNAct(3, 32, 3, 2, norm_cfg),
            ConvBNAct(32, 64, 3, 1, norm_cfg))
        self.blocks = nn.Sequential()
        stride, dilation = 2, 1
        for i, (in_ch, outs, s, skip, relu_first) in enumerate(
                XCEPTION65_BLOCKS):
            block_dilation = dilation
            if s > 1 and stride * s > output_stride:
                dilation *= s
                s = 1
            stride *= s
            self.blocks.add_module(
                str(i),
                XceptionBlock(in_ch, outs, s, block_dilation, skip,
                              relu_first, norm_cfg))

    def init_weights(self) -> None:
        if self._pretrained is None:
            super().init_weights()
            if self.init_cfg is None:
                for m in self.modules():
                    if isinstance(m, nn.Conv2d):
                        nn.init.kaiming_normal_(
                            m.weight, mode='fan_out', nonlinearity='relu')
            return
        # PAD priors start from their initialisation and the checkpoint
        # overwrites the ones it has (trained priors are kept)
        for m in self.modules():
            if m is not self and hasattr(m, 'prior') and hasattr(
                    m, 'init_weights'):
                m.init_weights()
        load_pretrained(self, self._pretrained, EXPECTED_CKPT,
                        lambda sd: {k: v for k, v in sd.items()
                                    if not k.startswith('head.')})

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i, block in enumerate(self.blocks):
            if i == 1:
                x, tap = block(x, with_tap=True)
                outs.append(tap)
            else:
                x = block(x)
            if i in (ENTRY_FLOW[-1], MIDDLE_FLOW[-1], EXIT_FLOW[-1]):
                outs.append(x)
        return tuple(outs[i] for i in self.out_indices)
