"""``norm_eval`` for pad_mm's backbones: keep the batch-norm layers in eval
mode (frozen statistics) while the rest trains, as mmseg's backbones do."""
from __future__ import annotations

from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['NormEvalMixin']


class NormEvalMixin:
    """Mix into an ``nn.Module`` with a ``norm_eval`` attribute: ``train()``
    puts every ``_BatchNorm`` back into eval mode when ``norm_eval``."""

    norm_eval: bool = False

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
