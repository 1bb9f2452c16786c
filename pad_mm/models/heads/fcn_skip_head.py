"""FCN-32s / FCN-8s heads (Long et al., CVPR 2015) for VGG (the paper's
Table 1 uses FCN-8s and its FCN-32s baseline; FCN-16s, which no config
used, is ``FCNSkipHead`` with ``num_skips = 1``).

Layer names follow the reference FCN nets: ``score_fr`` (here mmseg's
``conv_seg``, 1x1 on fc7), ``score_pool4`` / ``score_pool3`` (1x1 score
layers on the skips), ``upscore2`` / ``upscore_pool4`` (2x transposed convs,
bilinear-initialised and learned) and the final ``upscore`` (32s),
or ``upscore8`` (8s) transposed conv, bilinear and fixed
by default ("Final layer deconvolutional filters are fixed to bilinear
interpolation, while intermediate upsampling layers are initialized to
bilinear upsampling, and then learned", Long et al., sec. 4.3).

FCN-8s is the "at once" variant: all skips are trained together from the
start, the pool4 and pool3 features being scaled by 0.01 and 0.0001 before
scoring (the fixed ``scale_pool4`` / ``scale_pool3`` layers of
voc-fcn8s-atonce). Score layers start at zero, as in the reference.

The upsampled scores are cropped (offset 0) to the skip / input size, like
Caffe's Crop layers; see :class:`pad_mm.models.backbones.VGG` for the
geometry.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from pad_mm.registry import MODELS
from torch import Tensor

__all__ = ['FCNSkipHead', 'FCN32sHead', 'FCN8sHead', 'bilinear_kernel']


def bilinear_kernel(channels: int, size: int) -> Tensor:
    """FCN's ``upsample_filt``: [channels, channels, size, size] weight of a
    transposed conv doing per-channel bilinear upsampling."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = torch.arange(size, dtype=torch.float64)
    filt1d = 1 - (og - center).abs() / factor
    filt = (filt1d[:, None] * filt1d[None, :]).float()
    weight = torch.zeros(channels, channels, size, size)
    idx = torch.arange(channels)
    weight[idx, idx] = filt
    return weight


def _upsample(channels: int, factor: int) -> nn.ConvTranspose2d:
    # kernel 2f, stride f, padding f/2: output = f * input exactly
    return nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor,
                              padding=factor // 2, bias=False)


def _crop(x: Tensor, size: Sequence[int]) -> Tensor:
    h, w = int(size[0]), int(size[1])
    if x.shape[-2] >= h and x.shape[-1] >= w:
        return x[..., :h, :w]
    return x  # smaller: left to the caller's resize


class FCNSkipHead(BaseDecodeHead):
    """FCN decoder with 0, 1 or 2 skips (FCN-32s, -16s, -8s).

    Args:
        in_channels: channels of the selected inputs, skips first (finest
            first) and the fc7 feature last, e.g. (256, 512, 4096) for
            pool3, pool4, fc7.
        in_index: indices of those inputs in the backbone outputs.
        skip_scales: factor applied to each skip feature before its score
            layer, in in_channels order (FCN-8s at once: (1e-4, 1e-2) for
            pool3, pool4); None = 1.
        learn_final_upsample: make the final transposed conv trainable.
        zero_init_score: initialise score_fr and the skip score layers to
            zero (the reference); False keeps mmseg's Normal(0.01) for
            score_fr.
        **kwargs: ``BaseDecodeHead`` arguments (num_classes, loss_decode,
            ...). ``channels`` is in_channels[-1]; ``dropout_ratio``
            defaults to 0 (drop6/drop7 live in the backbone).

    Shapes: inputs skips [N, C_i, ceil(H / s_i), ...] and fc7
    [N, C, ceil(H / 32), ceil(W / 32)] -> scores [N, num_classes,
    8 * ceil(H / 8), 8 * ceil(W / 8)] (8s; 16 and 32 for the others),
    cropped to the input size by ``loss_by_feat`` / ``predict_by_feat``.
    """

    num_skips = 0

    def __init__(self,
                 in_channels: Sequence[int],
                 in_index: Sequence[int],
                 skip_scales: Sequence[float] | None = None,
                 learn_final_upsample: bool = False,
                 zero_init_score: bool = True,
                 dropout_ratio: float = 0.0,
                 **kwargs) -> None:
        in_channels = list(in_channels) if isinstance(
            in_channels, Sequence) else [in_channels]
        in_index = list(in_index) if isinstance(in_index,
                                                Sequence) else [in_index]
        n = self.num_skips + 1
        if len(in_channels) != n or len(in_index) != n:
            raise ValueError(
                f'{type(self).__name__} needs {n} inputs (skips '
                f'{self._skip_names()} then fc7): in_channels and in_index '
                f'must have length {n}, got {in_channels!r} and '
                f'{in_index!r}')
        if skip_scales is None:
            skip_scales = (1.0, ) * self.num_skips
        if len(skip_scales) != self.num_skips:
            raise ValueError(f'skip_scales must have {self.num_skips} '
                             f'values (for {self._skip_names()[::-1]}), got '
                             f'{skip_scales!r}')
        kwargs.pop('channels', None)
        super().__init__(
            in_channels,
            in_channels[-1],
            in_index=in_index,
            input_transform='multiple_select',
            dropout_ratio=dropout_ratio,
            **kwargs)
        self.skip_scales = tuple(float(s) for s in skip_scales)
        self.learn_final_upsample = learn_final_upsample
        self.zero_init_score = zero_init_score
        c = self.out_channels
        names = self._skip_names()
        # skips coarse to fine: pool4 then pool3
        for name, ch in zip(names, reversed(in_channels[:-1])):
            self.add_module(f'score_{name}', nn.Conv2d(ch, c, 1))
        self.upscore2 = _upsample(c, 2) if self.num_skips >= 1 else None
        if self.num_skips >= 2:
            self.upscore_pool4 = _upsample(c, 2)
        self.final_factor = 32 // 2**self.num_skips
        self.final_name = {0: 'upscore', 1: 'upscore16',
                           2: 'upscore8'}[self.num_skips]
        self.add_module(self.final_name, _upsample(c, self.final_factor))
        getattr(self, self.final_name).weight.requires_grad_(
            learn_final_upsample)

    def _skip_names(self) -> list[str]:
        return ['pool4', 'pool3'][:self.num_skips]

    def init_weights(self) -> None:
        super().init_weights()
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.ConvTranspose2d):
                    m.weight.copy_(
                        bilinear_kernel(m.in_channels, m.kernel_size[0]))
            if self.zero_init_score:
                for name in ['conv_seg'] + [f'score_{n}'
                                            for n in self._skip_names()]:
                    layer = getattr(self, name)
                    layer.weight.zero_()
                    layer.bias.zero_()

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        feats = self._transform_inputs(inputs)
        skips = feats[:-1][::-1]  # pool4, pool3
        score = self.cls_seg(feats[-1])  # score_fr
        scales = self.skip_scales[::-1]
        ups = [self.upscore2, getattr(self, 'upscore_pool4', None)]
        for i, (name, skip) in enumerate(zip(self._skip_names(), skips)):
            up = ups[i](score)
            s = getattr(self, f'score_{name}')(skip * scales[i])
            score = _crop(up, s.shape[-2:]) + s
        return getattr(self, self.final_name)(score)

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples) -> dict:
        size = batch_data_samples[0].gt_sem_seg.data.shape[-2:]
        return super().loss_by_feat(_crop(seg_logits, size),
                                    batch_data_samples)

    def predict_by_feat(self, seg_logits: Tensor,
                        batch_img_metas: list[dict]) -> Tensor:
        meta = batch_img_metas[0]
        if isinstance(meta['img_shape'], torch.Size):
            size = meta['img_shape']
        else:
            size = meta.get('pad_shape', meta['img_shape'])[:2]
        return super().predict_by_feat(_crop(seg_logits, size),
                                       batch_img_metas)


@MODELS.register_module(task='seg')
class FCN32sHead(FCNSkipHead):
    """FCN-32s: score_fr on fc7, one fixed 32x bilinear upsampling.
    in_channels=(4096,), in_index=(fc7 index,)."""
    num_skips = 0


@MODELS.register_module(task='seg')
class FCN8sHead(FCNSkipHead):
    """FCN-8s (at once): fc7 + pool4 + pool3 skips.
    in_channels=(256, 512, 4096); use skip_scales=(1e-4, 1e-2) for the
    at-once training of the reference."""
    num_skips = 2
