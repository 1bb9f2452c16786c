"""Torch-only core of pad_mm: the PAD convolution and Gumbel sampling.

* :mod:`.functional`: ``pad_conv2d`` and ``pad_conv2d_hard`` (argument
  checks, then the dispatcher);
* :mod:`.dispatch`: the :class:`~.dispatch.Dispatcher` (registry, choice of
  ``impl='auto'``, self-checks, timings, fallback; :mod:`.selfcheck` and
  :mod:`.guard` hold its checks and fallback);
* :mod:`.impls`: the implementations, each a
  :class:`~.impls.base.PADImpl`;
* :mod:`.gumbel`: Gumbel-softmax sampling; :mod:`.shapes`: output sizes.

Nothing in this package imports an OpenMMLab package; ``triton`` is an
optional import (only for the CUDA kernels).
"""
from . import dispatch, selfcheck
from .dispatch import Dispatcher, dispatch_report, dispatcher, self_check
from .functional import (available_impls, check_dilations, is_tracing,
                         pad_conv2d, pad_conv2d_hard, register_impl,
                         select_impl)
from .guard import FatalDeviceError
from .gumbel import check_tau, gumbel_noise, gumbel_softmax, hard_probs
from .impls import export_hard, hard_im2col, im2col, native, taps, triton_pad
from .impls.base import Geometry, PADImpl, implementation, implements
from .impls.export_hard import export_tracing, pad_conv2d_hard_export
from .impls.hard_im2col import (SPARSE_MAX_SHARE, SPARSE_MIN_PIXELS,
                                pad_conv2d_hard_im2col)
from .impls.im2col import pad_conv2d_im2col
from .impls.reference import pad_conv2d_hard_reference, pad_conv2d_reference
from .impls.triton_pad import (HAS_TRITON, pad_conv2d_hard_triton,
                               pad_conv2d_triton, tf32_enabled)
from .calls import sync
from .shapes import conv_out_size, pad_padding

__all__ = [
    'pad_conv2d', 'pad_conv2d_hard', 'pad_conv2d_reference',
    'pad_conv2d_hard_reference', 'pad_conv2d_im2col',
    'pad_conv2d_hard_im2col', 'pad_conv2d_triton', 'pad_conv2d_hard_triton',
    'HAS_TRITON', 'gumbel_softmax', 'gumbel_noise', 'hard_probs', 'check_tau',
    'check_dilations', 'register_impl', 'available_impls', 'select_impl',
    'is_tracing', 'self_check', 'dispatch_report', 'pad_conv2d_hard_export',
    'export_tracing', 'SPARSE_MAX_SHARE', 'SPARSE_MIN_PIXELS', 'Dispatcher',
    'dispatcher', 'PADImpl', 'implements', 'implementation', 'Geometry',
    'conv_out_size', 'pad_padding',
    'sync',
    'tf32_enabled', 'FatalDeviceError', 'dispatch', 'selfcheck',
    'export_hard', 'hard_im2col', 'im2col', 'native', 'taps', 'triton_pad'
]
