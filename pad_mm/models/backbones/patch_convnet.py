"""``PatchConvNet``: a patch stem and a few 3x3 conv blocks at one
resolution, for settings where only chosen convs may see across map
pixels (the evidence configs, configs/demo/evidence/).

A ResNet stem (three 3x3 convs and a max pool, 15 input pixels of
receptive field at stride 4) already sees the structure of a texture a map
pixel or two wide before the first conv of layer1, whatever that conv's
dilation. Here the stem is one ``patch_size`` x ``patch_size`` conv with
stride ``patch_size``: each map pixel sees its own patch and nothing else,
so what a 3x3 conv of dilation d adds is exactly what lies d map pixels
away. The blocks are ``x + act(norm(conv3x3(x)))`` (named
``convs.<i>.conv``, the names PAD conversion and ``FixedDilationBackbone``
address). An optional average pool (``pool`` > 0, a (2 pool + 1)^2
window, stride 1) closes the backbone: it pools what the blocks detected
over a neighbourhood without adding a non-linearity, so it gives a pixel's
label the evidence of its neighbours but cannot itself detect structure
at any distance.
"""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from pad_mm.registry import MODELS

__all__ = ['PatchConvNet', 'box_mean']


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or \
            value < minimum:
        raise ValueError(f'PatchConvNet: {name} must be an int >= {minimum},'
                         f' got {value!r}')
    return value


@MODELS.register_module()
class PatchConvNet(BaseModule):
    """Patch stem, ``num_convs`` residual 3x3 conv blocks, optional pool.

    Args:
        in_channels: input channels.
        channels: channels of the stem and of every block.
        patch_size: kernel size and stride of the stem (the output stride).
        num_convs: number of 3x3 conv blocks (>= 1).
        dilation: dilation (and padding) of the blocks' 3x3 convs.
        pool: half-width of the closing average pool (0: none).
        norm_cfg, act_cfg: of the stem and of every block.
        init_cfg: mmengine init config.

    Shapes: [N, in_channels, H, W] -> ``(out,)`` with out [N, channels,
    H // patch_size, W // patch_size].
    """

    def __init__(self,
                 in_channels: int = 3,
                 channels: int = 32,
                 patch_size: int = 4,
                 num_convs: int = 2,
                 dilation: int = 1,
                 pool: int = 0,
                 norm_cfg: dict | None = dict(type='BN', requires_grad=True),
                 act_cfg: dict | None = dict(type='ReLU'),
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value, minimum in (
                ('in_channels', in_channels, 1), ('channels', channels, 1),
                ('patch_size', patch_size, 1), ('num_convs', num_convs, 1),
                ('dilation', dilation, 1), ('pool', pool, 0)):
            _positive_int(name, value, minimum)
        self.patch_size = patch_size
        self.pool = pool
        self.stem = ConvModule(in_channels, channels, patch_size,
                               stride=patch_size, norm_cfg=norm_cfg,
                               act_cfg=act_cfg)
        self.convs = nn.ModuleList(
            ConvModule(channels, channels, 3, padding=dilation,
                       dilation=dilation, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for _ in range(num_convs))

    def forward(self, x: Tensor) -> tuple[Tensor]:
        """[N, C_in, H, W] -> ([N, channels, H // patch, W // patch],)."""
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(
                f'PatchConvNet: input height and width must be multiples '
                f'of patch_size={self.patch_size}, got {tuple(x.shape[-2:])}')
        x = self.stem(x)
        for conv in self.convs:
            x = x + conv(x)
        if self.pool:
            x = box_mean(x, self.pool)
        return (x, )


def box_mean(x: Tensor, radius: int) -> Tensor:
    """Mean of ``x`` [N, C, H, W] over the (2 radius + 1)^2 window around
    each pixel, counting only the pixels inside the map: the same as
    ``F.avg_pool2d(x, 2r + 1, 1, r, count_include_pad=False)``, computed as
    two depthwise 1-D sums (about 3x faster on a CPU) divided by the
    window's pixel count. Shape kept."""
    c, k = x.shape[1], 2 * radius + 1
    ones = x.new_ones(c, 1, k, 1)
    total = F.conv2d(x, ones, padding=(radius, 0), groups=c)
    total = F.conv2d(total, ones.transpose(2, 3), padding=(0, radius),
                     groups=c)
    count = F.conv2d(x.new_ones(1, 1, *x.shape[-2:]),
                     x.new_ones(1, 1, k, k), padding=radius)
    return total / count
