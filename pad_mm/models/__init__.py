"""OpenMMLab layer: the registered PAD conv, conversion, backbones."""
from . import backbones, heads  # noqa: F401  (registration)
from .convert import PADBackbone, convert_to_pad
from .layers import (AGGREGATIONS, EVAL_MODES, TRAIN_MODES, PADChain,
                     PADConv2d, PADPrior, PADProbe, link_chain)

__all__ = [
    'PADConv2d', 'PADPrior', 'PADProbe', 'PADChain', 'link_chain',
    'convert_to_pad', 'PADBackbone', 'AGGREGATIONS', 'TRAIN_MODES',
    'EVAL_MODES'
]
