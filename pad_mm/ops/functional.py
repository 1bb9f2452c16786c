"""The functional PAD convolution: a conv whose dilation is mixed per pixel.

``pad_conv2d(input, weight, bias, probs, dilations, stride=1, groups=1)`` is
the public functional contract. It checks its arguments, then dispatches to
the fastest registered implementation for the inputs (``impl='auto'``) or to
the one named; ``'reference'`` (one conv per dilation) is always there and
is the ground truth.

``pad_conv2d_hard(input, weight, bias, index, dilations, stride, groups)``
is the hard-inference contract: ``index`` [N, H_out, W_out] names the one
dilation of each output pixel, and it equals ``pad_conv2d`` with the one-hot
``probs`` of ``index``. Implementations may compute only the chosen dilation
per pixel. It has its own registry with the same implementation names.

Built-in implementations, in the order ``impl='auto'`` tries them:

* ``'triton'`` (:mod:`pad_mm.ops.impls.triton_pad`): fused Triton kernels for
  CUDA tensors (fp32/fp16/bf16, fp32 weights with half activations, any
  groups) when ``triton`` >= 3 is importable and the GPU has compute
  capability >= 8.0. ``auto`` considers them for ``C_in/groups >= 16``
  (depthwise stays on cuDNN via the reference) and picks them only after
  their self-check passed in this process and they measured at least 10%
  faster than the reference for the shape class, never under DDP
  (:mod:`pad_mm.ops.dispatch`). Not run
  on a GPU yet (``tools/analysis_tools/gpu_check.py`` measures them).
* ``'im2col'`` (:mod:`pad_mm.ops.impls.im2col`): mixed-im2col + one GEMM (soft)
  and (:mod:`pad_mm.ops.impls.hard_im2col`) a plain conv plus the differing
  pixels, or a gather + one GEMM (hard); works on any device and dtype;
  ``auto`` picks it on the CPU for non-depthwise convs with
  ``C_out/groups >= 8`` (where it measured faster than the reference, see
  ``tools/analysis_tools/benchmark_pad.py`` and
  ``docs/advanced/performance.md``).
* ``'reference'``: always supports everything; the fallback.

Choosing: a name other than ``'auto'`` (``impl=`` argument,
``PADConv2d(impl=...)``, ``pad_cfg=dict(..., impl=...)``) forces that
implementation (an error if it does not support the inputs). For
``impl='auto'`` the environment variable ``PAD_MM_IMPL`` (``reference``,
``triton``, ``im2col`` or ``auto``), when set, forces the same way. While
tracing, scripting, exporting or compiling (:func:`is_tracing`), ``auto``
runs the reference, except for hard inference recorded by
``torch.jit.trace``, the TorchScript ONNX exporter or ``torch.export``:
there ``pad_conv2d_hard`` runs ``'export'``
(:mod:`pad_mm.ops.impls.export_hard`: plain conv at the dominant dilation
plus a NonZero/Gather/MatMul/ScatterElements recomputation of the
differing pixels, instead of D full convs).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .dispatch import ENV_IMPL, dispatcher, is_tracing
from .impls import export_hard as _export
from .impls import hard_im2col as _hard_im2col
from .impls import im2col as _im2col
from .impls import triton_pad as _triton
from .shapes import conv_out_size, pad_padding

__all__ = [
    'pad_conv2d', 'pad_conv2d_hard', 'check_dilations', 'register_impl',
    'available_impls', 'select_impl', 'is_tracing', 'ENV_IMPL'
]


def register_impl(name: str,
                  fn: Callable[..., Tensor],
                  supports: Callable[..., bool],
                  priority: int = 0,
                  prefer: Callable[..., bool] | None = None,
                  hard: bool = False,
                  checked: bool = False) -> None:
    """Register a :class:`~pad_mm.ops.impls.base.PADImpl` for
    ``impl='auto'`` and by name (:meth:`Dispatcher.register
    <pad_mm.ops.dispatch.Dispatcher.register>` of the process's
    dispatcher).

    ``supports(input, weight, probs, dilations, stride, groups)`` returns
    whether ``fn`` handles these inputs correctly; ``prefer`` (default:
    ``supports``) whether ``impl='auto'`` should pick it. ``auto`` takes
    the first preferred one in the auto order: a new name is inserted at
    position ``priority`` (0 = tried first), never after ``'reference'``.
    ``hard=True`` registers a :func:`pad_conv2d_hard` implementation.
    ``checked=True``: ``auto`` picks it only after its self-check and a
    timing win (:mod:`pad_mm.ops.dispatch`).
    """
    dispatcher.register(name, fn, supports, priority, prefer, hard, checked)


def available_impls(hard: bool = False) -> list[str]:
    """Names accepted by ``pad_conv2d(..., impl=...)`` (``hard=True``: by
    ``pad_conv2d_hard``)."""
    return ['auto'] + dispatcher.names(hard)


def check_dilations(dilations: Sequence[int],
                    name: str = 'dilations') -> tuple[int, ...]:
    """Validate a set of dilation options and return it as a tuple.

    Allowed: a non-empty list/tuple of distinct positive ints.
    """
    if isinstance(dilations, (str, bytes)) or not isinstance(
            dilations, Sequence):
        raise TypeError(f'{name} must be a non-empty list/tuple of distinct '
                        f'positive ints, got {dilations!r}')
    if len(dilations) == 0:
        raise ValueError(f'{name} must be a non-empty list/tuple of distinct '
                         f'positive ints, got {dilations!r}')
    for d in dilations:
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f'{name} must contain ints only, got {d!r} in '
                            f'{dilations!r}')
        if d < 1:
            raise ValueError(f'{name} must contain positive ints (>= 1), '
                             f'got {d!r} in {dilations!r}')
    if len(set(dilations)) != len(dilations):
        raise ValueError(f'{name} must not contain duplicates, got '
                         f'{dilations!r}')
    return tuple(int(d) for d in dilations)


def _check_args(input: Tensor, weight: Tensor, bias: Tensor | None,
                probs: Tensor | None, dilations: tuple[int, ...], stride: int,
                groups: int) -> None:
    if input.dim() != 4:
        raise ValueError(f'input must be [N, C, H, W], got shape '
                         f'{tuple(input.shape)}')
    if weight.dim() != 4 or weight.shape[-1] != weight.shape[-2] or \
            weight.shape[-1] % 2 == 0:
        raise ValueError('weight must be [C_out, C_in/groups, k, k] with an '
                         f'odd square kernel, got {tuple(weight.shape)}')
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f'stride must be a positive int, got {stride!r}')
    if not isinstance(groups, int) or groups < 1 or \
            input.shape[1] % groups or weight.shape[0] % groups or \
            weight.shape[1] * groups != input.shape[1]:
        raise ValueError(
            f'groups={groups!r} does not fit input channels '
            f'{input.shape[1]} and weight {tuple(weight.shape)}')
    if bias is not None and bias.shape != (weight.shape[0], ):
        raise ValueError(f'bias must be [C_out]=[{weight.shape[0]}], got '
                         f'{tuple(bias.shape)}')
    if probs is None:
        return
    k = weight.shape[-1]
    h_out = conv_out_size(input.shape[2], k, stride)
    w_out = conv_out_size(input.shape[3], k, stride)
    expected = (input.shape[0], len(dilations), h_out, w_out)
    if tuple(probs.shape) != expected:
        raise ValueError(f'probs must be [N, D, H_out, W_out]={expected} '
                         f'(D = len(dilations) = {len(dilations)}), got '
                         f'{tuple(probs.shape)}')


def select_impl(input: Tensor, weight: Tensor, probs: Tensor,
                dilations: tuple[int, ...], stride: int, groups: int,
                impl: str = 'auto', hard: bool = False) -> str:
    """Name of the implementation ``pad_conv2d`` (``hard=True``:
    ``pad_conv2d_hard``, ``probs`` is then ``index``) would run for these
    inputs. For ``impl='auto'`` this may run a checked implementation's
    one-time self-check and shape-class timing."""
    return dispatcher.select(input, weight, probs, tuple(dilations), stride,
                             groups, impl, hard)


def pad_conv2d(input: Tensor,
               weight: Tensor,
               bias: Tensor | None,
               probs: Tensor,
               dilations: Sequence[int],
               stride: int = 1,
               groups: int = 1,
               impl: str = 'auto') -> Tensor:
    """Pixel-wise adaptive dilated convolution.

    ``sum_d probs[:, d:d+1] * conv2d(input, weight, None, stride,
    padding=d*(k-1)//2, dilation=d, groups) + bias``

    Args:
        input: [N, C_in, H, W].
        weight: [C_out, C_in/groups, k, k], k odd.
        bias: [C_out] or None.
        probs: [N, D, H_out, W_out] with ``H_out = (H - 1) // stride + 1``
            (:func:`~pad_mm.ops.conv_out_size`);
            any non-negative weights (one-hot, soft, straight-through).
        dilations: D distinct positive ints (absolute dilations).
        stride: conv stride (same for both axes).
        groups: conv groups (1, depthwise, or anything conv2d accepts).
        impl: ``'auto'`` or a name from :func:`available_impls`.

    Returns:
        [N, C_out, H_out, W_out].
    """
    dilations = check_dilations(dilations)
    _check_args(input, weight, bias, probs, dilations, stride, groups)
    return dispatcher.run(input, weight, bias, probs, dilations, stride,
                          groups, impl, False)


def _check_index(input: Tensor, index: Tensor, num_dilations: int, k: int,
                 stride: int, tracing: bool) -> tuple[int, int] | None:
    """Check ``index``; returns its (min, max), None if it is empty or
    ``tracing`` (:func:`is_tracing`, asked once by the caller)."""
    h_out = conv_out_size(input.shape[2], k, stride)
    w_out = conv_out_size(input.shape[3], k, stride)
    expected = (input.shape[0], h_out, w_out)
    if tuple(index.shape) != expected:
        raise ValueError(f'index must be [N, H_out, W_out]={expected}, got '
                         f'{tuple(index.shape)}')
    if index.dtype.is_floating_point or index.dtype.is_complex or \
            index.dtype == torch.bool:
        raise TypeError(f'index must be an integer tensor, got '
                        f'{index.dtype}')
    if tracing:
        return None  # no values to check (fake tensors) or to bake in
    if index.is_cuda:
        # no host sync per call: checked on the device, raised at the next
        # synchronisation (the layer's argmax index is in range by
        # construction)
        if index.numel():
            torch._assert_async(
                ((index >= 0) & (index < num_dilations)).all(),
                f'index values must be in [0, {num_dilations}) (positions '
                'in dilations)')
        return None
    if not index.numel():
        return None
    lo, hi = (int(t) for t in torch.aminmax(index))
    if lo < 0 or hi >= num_dilations:
        raise ValueError(f'index values must be in [0, {num_dilations}) '
                         f'(positions in dilations), got range '
                         f'[{lo}, {hi}]')
    return lo, hi


def pad_conv2d_hard(input: Tensor,
                    weight: Tensor,
                    bias: Tensor | None,
                    index: Tensor,
                    dilations: Sequence[int],
                    stride: int = 1,
                    groups: int = 1,
                    impl: str = 'auto') -> Tensor:
    """Hard PAD: each output pixel uses exactly one dilation.

    Equals ``pad_conv2d(input, weight, bias, one_hot(index), dilations,
    stride, groups)``; the fast implementations compute only the chosen
    dilation per pixel. Used by ``PADConv2d`` in ``eval_mode='hard'``.

    Args:
        input: [N, C_in, H, W].
        weight: [C_out, C_in/groups, k, k], k odd.
        bias: [C_out] or None.
        index: [N, H_out, W_out] integer tensor, position of each pixel's
            dilation in ``dilations`` (e.g. ``logits.argmax(1)``).
        dilations, stride, groups: as :func:`pad_conv2d`.
        impl: ``'auto'`` or a name from ``available_impls(hard=True)``.

    Returns:
        [N, C_out, H_out, W_out]. Differentiable in input, weight and bias
        (``index`` is discrete).

    With ``impl='auto'`` on the CPU (where the check needs no device
    sync), an ``index`` that names the same dilation ``d`` at every pixel
    runs ``F.conv2d(input, weight, bias, stride, d*(k-1)//2, d, groups)``:
    the very call of ``nn.Conv2d``, so a layer that picks one dilation
    everywhere equals the plain conv bit for bit.
    """
    dilations = check_dilations(dilations)
    _check_args(input, weight, bias, None, dilations, stride, groups)
    tracing = is_tracing()
    k = weight.shape[-1]
    span = _check_index(input, index, len(dilations), k, stride, tracing)
    if impl == 'auto' and span is not None and span[0] == span[1]:
        d = dilations[span[0]]
        return F.conv2d(input, weight, bias, stride, pad_padding(k, d), d,
                        groups)
    return dispatcher.run(input, weight, bias, index, dilations, stride,
                          groups, impl, True)


def _cpu_prefers_im2col(input: Tensor, weight: Tensor, *args) -> bool:
    # measured (benchmark_pad.py): the mixed-im2col GEMM beats D convs on
    # the CPU when the per-group GEMM is not degenerate; depthwise convs
    # are memory-bound and the reference's D depthwise convs win there.
    # Under autocast the reference keeps autocast's per-op dtype rules.
    return input.device.type == 'cpu' and weight.shape[1] > 1 and \
        weight.shape[0] // args[-1] >= 8 and \
        not torch.is_autocast_enabled('cpu')


def _always(*args) -> bool:
    return True


def _never(*args) -> bool:
    return False


# a call is checked as made and on both backward paths, the buffers one
# image per chunk as at production sizes (the GEMM path: where one image's
# buffer does not fit)
_BACKWARD_PATHS = (functools.partial(_triton.bwd_scope, 'buffer', True),
                   functools.partial(_triton.bwd_scope, 'gemm', True))


dispatcher.register('im2col', _im2col.pad_conv2d_im2col, _always,
                    priority=0, prefer=_cpu_prefers_im2col)
dispatcher.register('im2col', _hard_im2col.pad_conv2d_hard_im2col, _always,
                    priority=0, prefer=_cpu_prefers_im2col, hard=True)
# hard inference in recorded graphs: run while a graph is recorded for
# export, never by the auto order otherwise
dispatcher.register('export', _export.pad_conv2d_hard_export, _always,
                    priority=0, prefer=_never, hard=True,
                    record_when=_export.export_tracing)
dispatcher.register('triton', _triton.pad_conv2d_triton, _triton.supports,
                    priority=0, prefer=_triton.prefer, checked=True,
                    check_context=_BACKWARD_PATHS)
dispatcher.register('triton', _triton.pad_conv2d_hard_triton,
                    _triton.supports_hard, priority=0,
                    prefer=_triton.prefer, hard=True, checked=True,
                    check_context=_BACKWARD_PATHS)
