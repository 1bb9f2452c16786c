"""Setters that apply one value to every PAD layer of a model.

Both validate the value before touching any layer, so a typo raises
instead of leaving the model half-changed (or, for a mode, sampling
Gumbel noise in evaluation without a word).
"""
from __future__ import annotations

import torch.nn as nn

from pad_mm.ops import check_tau

from .layers import EVAL_MODES, PADConv2d, pad_layers
from .layers.settings import check_choice

__all__ = ['set_eval_mode', 'set_tau']


def set_eval_mode(model: nn.Module, mode: str) -> int:
    """Set ``eval_mode`` of every :class:`PADConv2d` of ``model`` (a model
    wrapper is looked through) to ``mode``; returns how many of them are
    adaptive (the layers the mode acts on; a non-adaptive one runs as a
    plain conv in any mode but is set too, so the model reports one mode).

    Args:
        model: any module holding PAD layers.
        mode: one of :data:`pad_mm.models.EVAL_MODES` (``'hard'``: argmax
            of the priors, one dilation per pixel, as deployed).

    Raises:
        PADConfigError: (a ``ValueError``) ``mode`` is not one of
            ``EVAL_MODES``; no layer is changed then.
    """
    check_choice(mode, EVAL_MODES, 'eval_mode')  # the layer's own check
    n = 0
    for m in model.modules():
        if isinstance(m, PADConv2d):
            m.eval_mode = mode
            n += int(m.adaptive)
    return n


def set_tau(model: nn.Module, tau: float) -> int:
    """Set tau on every adaptive PAD layer of ``model``; returns how many.

    The value goes into each layer's ``pad_tau`` buffer, so checkpoints
    carry it: a resumed run, ``tools/test.py`` and ``init_model`` use the
    trained tau.

    Raises:
        TypeError, ValueError: ``tau`` is not a finite number > 0 (from
            :func:`pad_mm.ops.check_tau`).
    """
    tau = check_tau(tau)
    n = 0
    for _, m in pad_layers(model):
        m.tau = tau
        n += 1
    return n
