"""Backbones of the paper that mmseg / mmpretrain lack (VGG, Xception65,
DRN), the ``CheckedPretrained`` initializer, ``FixedDilationBackbone``
(fixed-dilation controls of the ablation) and ``PatchConvNet`` (the small
net of the evidence setting)."""
from . import drn, fixed_dilation, pretrained  # noqa: F401  (registration)
from .drn import DRN
from .fixed_dilation import FixedDilationBackbone, set_conv_dilation
from .patch_convnet import PatchConvNet, box_mean
from .pretrained import CheckedPretrainedInit
from .vgg import VGG
from .xception import Xception65

__all__ = ['DRN', 'VGG', 'Xception65', 'CheckedPretrainedInit',
           'FixedDilationBackbone', 'set_conv_dilation', 'PatchConvNet',
           'box_mean']
