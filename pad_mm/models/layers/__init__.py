"""The PAD layer, one idea per module: ``aggregation`` (eqs. 3-5),
``prior`` (f, its initialisation, the prior), ``settings`` (the one spec
of the layer's settings), ``chain`` (h^(l-1) between layers) and
``loading`` (how a checkpoint loads) and ``pad_conv`` (the conv)."""
from .aggregation import AGGREGATION_TYPES, Aggregation, register_aggregation
from .chain import PADChain, PADChainError, link_chain
from .loading import PAD_BUFFERS, PADCheckpointMismatchError
from .pad_conv import PADConv2d, PADProbe, non_adaptive_reason, pad_layers
from .prior import PADPrior, ScaledTanh, act_name, prior_init_biases
from .settings import (AGGREGATIONS, DILATION_MODES, EVAL_MODES, TRAIN_MODES,
                       UNSET, PADConfigError, PADSettings, default_act_cfg,
                       parse_settings, settings_table)

__all__ = [
    'PADConv2d', 'PADPrior', 'PADProbe', 'PADChain', 'PADChainError',
    'link_chain', 'pad_layers', 'non_adaptive_reason', 'AGGREGATIONS',
    'TRAIN_MODES', 'EVAL_MODES', 'DILATION_MODES', 'UNSET', 'Aggregation',
    'AGGREGATION_TYPES', 'register_aggregation', 'ScaledTanh', 'act_name',
    'prior_init_biases', 'PADCheckpointMismatchError', 'PAD_BUFFERS',
    'PADConfigError', 'PADSettings', 'default_act_cfg', 'parse_settings',
    'settings_table'
]
