"""DeepLabV3+ with a ResNet-101 V1c backbone in plain torch (no
OpenMMLab), for the model step of the GPU check on a machine without
OpenMMLab. Mirrors mmseg's ``ResNetV1c`` (deep stem, ``contract_dilation``)
and ``DepthwiseSeparableASPPHead`` module for module (the parameter count
is compared with mmseg's model in the tests) and pad_mm's R101 Cityscapes
config: output stride 16, ASPP rates (1, 6, 12, 18), no auxiliary head,
PAD in the 3x3 convs of layer4 with options (1, 2, 4) x their dilation.

The PAD layer here, :class:`PADConv`, is a stand-in built from
``pad_mm.ops`` alone (``pad_mm.models.PADConv2d`` needs mmengine): the
Markov prior (a 1x1 conv and f = 2 * exp(rho) * tanh), a Gumbel-softmax
sample in training (``pad_conv2d``), the argmax in eval
(``pad_conv2d_hard``). The same PAD op calls as the real layer; its
prior has no checkpoint handling, chains or options."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .. import gumbel_softmax, pad_conv2d, pad_conv2d_hard

__all__ = ['PADConv', 'Bottleneck', 'ResNetV1c', 'SepASPPHead',
           'DeepLabV3Plus']


class PADConv(nn.Module):
    """3x3 PAD conv, no bias: [N, C_in, H, W] -> [N, C_out, H/s, W/s]."""

    def __init__(self, c_in: int, c_out: int, stride: int, dilation: int,
                 options: tuple[int, ...] = (1, 2, 4), tau: float = 1.0,
                 impl: str = 'auto') -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(c_out, c_in, 3, 3))
        nn.init.kaiming_normal_(self.weight, mode='fan_out',
                                nonlinearity='relu')
        d = len(options)
        self.prior = nn.Conv2d(c_in, d, 1, stride)
        nn.init.zeros_(self.prior.weight)
        with torch.no_grad():  # f favours option 0 by a margin of 2
            self.prior.bias.fill_(-math.atanh(0.5))
            self.prior.bias[0] = math.atanh(0.5)
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.dilations = tuple(o * dilation for o in options)
        self.stride, self.tau, self.impl = stride, tau, impl

    def forward(self, x: Tensor) -> Tensor:
        logits = 2.0 * self.log_scale.exp() * torch.tanh(self.prior(x))
        if not self.training:
            return pad_conv2d_hard(x, self.weight, None, logits.argmax(1),
                                   self.dilations, self.stride,
                                   impl=self.impl)
        probs = gumbel_softmax(logits.float(), self.tau)
        return pad_conv2d(x, self.weight, None, probs, self.dilations,
                          self.stride, impl=self.impl)


def conv_bn_relu(c_in: int, c_out: int, k: int = 1, stride: int = 1,
                 dilation: int = 1, groups: int = 1) -> nn.Sequential:
    """mmcv's ConvModule: conv (no bias), BN, ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, stride, dilation * (k // 2), dilation,
                  groups, bias=False), nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True))


def sep_conv(c_in: int, c_out: int, dilation: int = 1) -> nn.Sequential:
    """mmcv's DepthwiseSeparableConvModule (3x3)."""
    return nn.Sequential(conv_bn_relu(c_in, c_in, 3, 1, dilation, c_in),
                         conv_bn_relu(c_in, c_out, 1))


class Bottleneck(nn.Module):
    """ResNet bottleneck ('pytorch' style: the stride on the 3x3)."""
    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int, dilation: int,
                 pad: bool, impl: str) -> None:
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = PADConv(planes, planes, stride, dilation, impl=impl) \
            if pad else nn.Conv2d(planes, planes, 3, stride, dilation,
                                  dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.downsample = nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False),
            nn.BatchNorm2d(c_out)) if stride != 1 or c_in != c_out else None

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        idt = x if self.downsample is None else self.downsample(x)
        return F.relu(out + idt)


class ResNetV1c(nn.Module):
    """mmseg's ResNetV1c: deep stem (three 3x3 convs), max pool, four
    stages; a dilated stage's first block has half its dilation
    (``contract_dilation``). ``pad_stages``: stage indices whose 3x3 convs
    are :class:`PADConv`. Returns the stage outputs."""

    def __init__(self, depths=(3, 4, 23, 3), stem: int = 64,
                 width: int = 64, strides=(1, 2, 2, 1),
                 dilations=(1, 1, 1, 2), pad_stages=(3, ),
                 impl: str = 'auto') -> None:
        super().__init__()
        self.stem = nn.Sequential(
            conv_bn_relu(3, stem // 2, 3, 2), conv_bn_relu(stem // 2,
                                                           stem // 2, 3),
            conv_bn_relu(stem // 2, stem, 3), nn.MaxPool2d(3, 2, 1))
        c_in, stages = stem, []
        for i, (depth, s, d) in enumerate(zip(depths, strides, dilations)):
            planes = width * 2**i
            blocks = []
            for j in range(depth):
                dil = d // 2 if j == 0 and d > 1 else d
                blocks.append(Bottleneck(c_in, planes, s if j == 0 else 1,
                                         dil, i in pad_stages, impl))
                c_in = planes * Bottleneck.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.out_channels = c_in

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


class SepASPPHead(nn.Module):
    """mmseg's DepthwiseSeparableASPPHead: image pool, ASPP (1x1 at rate 1,
    depthwise-separable 3x3 at the others), 3x3 bottleneck, the stride-4
    features through a 1x1 to ``c1``, two separable 3x3 convs, dropout,
    a 1x1 classifier."""

    def __init__(self, c_in: int, c_low: int, channels: int = 512,
                 c1: int = 48, rates=(1, 6, 12, 18), classes: int = 19
                 ) -> None:
        super().__init__()
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                        conv_bn_relu(c_in, channels))
        self.aspp = nn.ModuleList(
            [conv_bn_relu(c_in, channels) if r == 1 else
             sep_conv(c_in, channels, r) for r in rates])
        self.bottleneck = conv_bn_relu((len(rates) + 1) * channels,
                                       channels, 3)
        self.c1_bottleneck = conv_bn_relu(c_low, c1)
        self.sep_bottleneck = nn.Sequential(sep_conv(channels + c1,
                                                     channels),
                                            sep_conv(channels, channels))
        self.dropout = nn.Dropout2d(0.1)
        self.conv_seg = nn.Conv2d(channels, classes, 1)

    def forward(self, feats: list[Tensor]) -> Tensor:
        x = feats[-1]
        pooled = F.interpolate(self.image_pool(x), x.shape[2:],
                               mode='bilinear', align_corners=False)
        x = self.bottleneck(torch.cat([pooled] + [m(x) for m in self.aspp],
                                      1))
        low = self.c1_bottleneck(feats[0])
        x = F.interpolate(x, low.shape[2:], mode='bilinear',
                          align_corners=False)
        x = self.sep_bottleneck(torch.cat([x, low], 1))
        return self.conv_seg(self.dropout(x))


class DeepLabV3Plus(nn.Module):
    """[N, 3, H, W] -> logits [N, classes, H, W] (the head's stride-4
    logits resized bilinearly, as mmseg's loss does)."""

    def __init__(self, pad: bool, impl: str = 'auto', classes: int = 19,
                 small: bool = False) -> None:
        super().__init__()
        kw = dict(depths=(1, 1, 1, 1), stem=8, width=4) if small else {}
        self.backbone = ResNetV1c(pad_stages=(3, ) if pad else (),
                                  impl=impl, **kw)
        c = self.backbone.out_channels
        self.decode_head = SepASPPHead(
            c, c // 8, 16 if small else 512, 8 if small else 48,
            classes=classes)

    def forward(self, img: Tensor) -> Tensor:
        logits = self.decode_head(self.backbone(img))
        return F.interpolate(logits, img.shape[2:], mode='bilinear',
                             align_corners=False)
