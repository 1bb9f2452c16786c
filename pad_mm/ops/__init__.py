"""Torch-only core of pad_mm: the PAD convolution and Gumbel sampling.

Nothing in this package imports an OpenMMLab package.
"""
from .gumbel import check_tau, gumbel_noise, gumbel_softmax, hard_probs
from .pad_conv import (available_impls, check_dilations, pad_conv2d,
                       register_impl, select_impl)
from .reference import pad_conv2d_reference

__all__ = [
    'pad_conv2d', 'pad_conv2d_reference', 'gumbel_softmax', 'gumbel_noise',
    'hard_probs', 'check_tau', 'check_dilations', 'register_impl',
    'available_impls', 'select_impl'
]
