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


def initial_logits(prior) -> list:
    """The prior's logits after f at initialisation, for zero weights: f of
    its input (or static) biases, rounded to 1e-6. Under the default
    ScaledTanh (bound 2) a fresh prior favouring option 0 by the margin 2
    gives [1.0, -1.0, -1.0]; under the identity [2.0, 0.0, 0.0]."""
    bias = getattr(prior, 'input_bias', None)
    if bias is None:
        bias = prior.static_bias
    with torch.no_grad():
        return [round(float(v), 6) for v in prior.act(bias)]
