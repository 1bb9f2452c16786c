from .pad_conv import (AGGREGATIONS, EVAL_MODES, TRAIN_MODES, PADChain,
                       PADConv2d, PADPrior, PADProbe, link_chain)

__all__ = [
    'PADConv2d', 'PADPrior', 'PADProbe', 'PADChain', 'link_chain',
    'AGGREGATIONS', 'TRAIN_MODES', 'EVAL_MODES'
]
