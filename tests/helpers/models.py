"""Building models from registry configs in the tests."""
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)


def build_seg(cfg: dict, meta: bool = False):
    """Build ``cfg`` from mmseg's registry (on the meta device: no memory)."""
    init_default_scope('mmseg')
    if meta:
        with torch.device('meta'):
            return MODELS.build(cfg)
    return MODELS.build(cfg)


def numel(module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())
