"""Backbones of the paper that mmseg / mmpretrain lack (VGG, Xception65,
DRN), and the ``CheckedPretrained`` initializer."""
from . import drn, pretrained  # noqa: F401  (registration)
from .drn import DRN
from .pretrained import CheckedPretrainedInit
from .vgg import VGG
from .xception import Xception65

__all__ = ['DRN', 'VGG', 'Xception65', 'CheckedPretrainedInit']
