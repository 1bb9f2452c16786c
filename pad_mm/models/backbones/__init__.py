"""Backbones of the paper that mmseg / mmpretrain lack, and the checked
``'Pretrained'`` initializer of both scopes."""
from . import drn, fixed_dilation, pretrained  # noqa: F401
from .vgg import VGG  # noqa: F401
from .xception import Xception65  # noqa: F401
