from .pad_conv import (AGGREGATIONS, EVAL_MODES, TRAIN_MODES, PADChain,
                       PADChainError, PADConv2d, PADPrior, PADProbe,
                       link_chain, non_adaptive_reason, pad_layers)

__all__ = [
    'PADConv2d', 'PADPrior', 'PADProbe', 'PADChain', 'PADChainError',
    'link_chain', 'pad_layers', 'non_adaptive_reason', 'AGGREGATIONS',
    'TRAIN_MODES', 'EVAL_MODES'
]
