"""OpenMMLab layer: the PAD layer and its settings spec, conversion by
layer name, and backbones (torch, mmengine and mmcv). The segmentation
heads (:mod:`pad_mm.models.heads`) need mmseg and are imported by the
``pad_mm`` registry when a segmentation lookup needs them."""
from . import backbones  # noqa: F401  (registration)
from .convert import (PADBackbone, build_pad_backbone, convert_to_pad,
                      format_pad_report, is_convertible_conv, match_pad_cfg,
                      pad_report)
from .layers import (AGGREGATIONS, EVAL_MODES, TRAIN_MODES, UNSET, PADChain,
                     PADChainError, PADConfigError, PADConv2d, PADPrior,
                     PADProbe, PADSettings, ScaledTanh, default_act_cfg,
                     link_chain, non_adaptive_reason, pad_layers,
                     parse_settings, settings_table)
from .pad_cfg import PADChainCfg, parse_pad_cfg
from .utils import set_eval_mode, set_tau

__all__ = [
    'PADConv2d', 'PADPrior', 'PADProbe', 'PADChain', 'PADChainError',
    'link_chain', 'pad_layers', 'non_adaptive_reason', 'convert_to_pad',
    'match_pad_cfg', 'is_convertible_conv', 'build_pad_backbone',
    'PADBackbone', 'PADConfigError', 'PADSettings', 'PADChainCfg',
    'parse_settings', 'parse_pad_cfg', 'settings_table', 'AGGREGATIONS',
    'TRAIN_MODES', 'EVAL_MODES', 'UNSET', 'ScaledTanh', 'default_act_cfg',
    'pad_report', 'format_pad_report', 'set_eval_mode', 'set_tau'
]
