"""Torch-only core of pad_mm: the PAD convolution and Gumbel sampling.

Nothing in this package imports an OpenMMLab package; ``triton`` is an
optional import (only for the CUDA kernels).
"""
from .dispatch import dispatch_report, self_check
from .export_hard import export_tracing, pad_conv2d_hard_export
from .gumbel import check_tau, gumbel_noise, gumbel_softmax, hard_probs
from .hard_im2col import (SPARSE_MAX_SHARE, SPARSE_MIN_PIXELS,
                          pad_conv2d_hard_im2col)
from .im2col import pad_conv2d_im2col
from .pad_conv import (available_impls, check_dilations, is_tracing,
                       pad_conv2d, pad_conv2d_hard, register_impl,
                       select_impl)
from .reference import pad_conv2d_hard_reference, pad_conv2d_reference
from .triton_pad import (HAS_TRITON, pad_conv2d_hard_triton,
                         pad_conv2d_triton)

__all__ = [
    'pad_conv2d', 'pad_conv2d_hard', 'pad_conv2d_reference',
    'pad_conv2d_hard_reference', 'pad_conv2d_im2col',
    'pad_conv2d_hard_im2col', 'pad_conv2d_triton', 'pad_conv2d_hard_triton',
    'HAS_TRITON', 'gumbel_softmax', 'gumbel_noise', 'hard_probs', 'check_tau',
    'check_dilations', 'register_impl', 'available_impls', 'select_impl',
    'is_tracing', 'self_check', 'dispatch_report', 'pad_conv2d_hard_export',
    'export_tracing', 'SPARSE_MAX_SHARE', 'SPARSE_MIN_PIXELS'
]
