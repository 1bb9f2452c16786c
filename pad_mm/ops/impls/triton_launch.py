"""Launch parameters of the Triton kernels: constexprs, the variants a
launch can compile, and a launch hook that can record instead of run."""
from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch

from .triton_kernels import (HAS_TRITON, bwd_cols_kernel,
                             bwd_input_gemm_kernel, bwd_input_kernel,
                             bwd_probs_kernel, bwd_weight_kernel, fwd_kernel)
from .triton_tiles import gpu_blocks

__all__ = [
    'KernelVariant', 'launch_variants', 'fwd_meta', 'cols_meta',
    'gather_meta', 'input_gemm_meta', 'probs_meta', 'weight_meta',
    'Launch', 'launch', 'target_capability', 'recording'
]


class Launch(NamedTuple):
    """One kernel launch: the jitted ``kernel``, its ``grid``, positional
    ``args`` and constexpr ``meta``."""
    kernel: Any
    grid: tuple
    args: tuple
    meta: dict


_RECORDING = threading.local()


def launch(kernel: Any, grid: tuple, *args: Any, **meta: Any) -> None:
    """``kernel[grid](*args, **meta)``, or recorded inside
    :func:`recording`."""
    rec = getattr(_RECORDING, 'launches', None)
    if rec is not None:
        rec.append(Launch(kernel, grid, args, meta))
        return
    kernel[grid](*args, **meta)


@contextlib.contextmanager
def recording(cap: int | None = None) -> Iterator[list[Launch]]:
    """Within the block (this thread), launches are recorded into the
    yielded list instead of run, with the tiles of compute capability
    ``cap`` (:func:`target_capability`)."""
    rec: list[Launch] = []
    prev = (getattr(_RECORDING, 'launches', None),
            getattr(_RECORDING, 'cap', None))
    _RECORDING.launches, _RECORDING.cap = rec, cap
    try:
        yield rec
    finally:
        _RECORDING.launches, _RECORDING.cap = prev


def target_capability(x: torch.Tensor) -> int | None:
    """The compute capability (``major * 10 + minor``) the launches for
    ``x`` are for: its GPU's, or inside :func:`recording` the recorded
    one (None: sm_90's tiles)."""
    if x.is_cuda:
        return _capability(x.device.index if x.device.index is not None
                           else torch.cuda.current_device())
    return getattr(_RECORDING, 'cap', None)


@functools.lru_cache(maxsize=None)
def _capability(index: int) -> int:
    major, minor = torch.cuda.get_device_capability(index)
    return major * 10 + minor


_TT = {torch.float32: 'fp32', torch.float16: 'fp16', torch.bfloat16: 'bf16'}


def fwd_meta(cast: bool, prec: str, hard: bool, stride: int, k: int,
              d: int, blocks: dict) -> dict:
    return dict(STRIDE=stride, K=k, D=d, HARD=hard, CAST=cast, PREC=prec,
                **blocks)


def cols_meta(cast: bool, prec: str, stride: int, k: int, d: int,
              cols: bool, probs: bool, blocks: dict) -> dict:
    # cols: store the grad_cols buffer; probs: grad_probs' partial sums
    # (DP: D rounded up to a power of two, the partial sums' tile width)
    return dict(STRIDE=stride, K=k, D=d, DP=1 << max(d - 1, 0).bit_length(),
                COLS=bool(cols), PROBS=bool(probs), CAST=cast, PREC=prec,
                **blocks)


def gather_meta(stride: int, k: int, d: int, blocks: dict) -> dict:
    # bwd_input_kernel
    return dict(STRIDE=stride, K=k, D=d, BM=blocks['BM'], BN=blocks['BN'])


def input_gemm_meta(cast: bool, prec: str, stride: int, k: int, d: int,
                    blocks: dict) -> dict:
    # bwd_input_gemm_kernel (the backward without the buffer)
    return dict(STRIDE=stride, K=k, D=d, CAST=cast, PREC=prec, **blocks)


def probs_meta(blocks: dict) -> dict:
    # bwd_probs_kernel
    return dict(BLOCK=blocks['BLOCK'])


def weight_meta(cast: bool, prec: str, stride: int, k: int, d: int,
                 blocks: dict) -> dict:
    return dict(STRIDE=stride, K=k, D=d, CAST=cast, PREC=prec, **blocks)


class KernelVariant(NamedTuple):
    """One compiled variant: ``fn`` with a Triton ``signature`` (argument
    name -> type string, e.g. ``'*bf16'``, ``'i32'``, ``'constexpr'``) and
    the ``constexprs`` a launch passes."""
    name: str
    fn: Any
    signature: dict
    constexprs: dict


def launch_variants(k: int = 3, num_dilations: int = 3,
                    blocks: dict | None = None,
                    cap: int | None = None) -> list[KernelVariant]:
    """Every kernel variant the launches of this module can compile for a
    ``k`` x ``k`` kernel and ``num_dilations`` dilations on a GPU: each
    compute dtype (fp32 with TF32 on/off, fp16, bf16), soft/hard (the
    straight-through probabilities take the soft kernels), stride 1/2, and
    for the backward columns which of grad_input/grad_probs is needed
    (``bwd_cols-<dtype>-s<stride>-cols|-probs``; ``bwd_cols-<dtype>`` and
    ``-s2`` without a suffix: both), and the buffer-free grad_input GEMM
    (``bwd_input_gemm-<dtype>-s<stride>``); ``bwd_weight`` with grad_weight
    in fp32 and, for a half weight, in its dtype (``-w<dtype>``).
    ``bwd_probs`` (a sum of fp32 partials) is the same code for every
    dtype and stride, listed under each name. Integer arguments are typed
    ``i32`` (:func:`supports` keeps every tensor below 2**31 elements).
    Tiles: ``blocks``, else those of compute capability ``cap`` (None:
    sm_90's). Used by the compile test in CI."""
    if not HAS_TRITON:
        raise RuntimeError('launch_variants needs the triton package')
    # the launches' tiles for ``cap`` (not the interpreter's: these
    # variants are for a GPU)
    blocks = {name: dict(b) for name, b in (
        gpu_blocks(cap) if blocks is None else blocks).items()}
    modes = [(torch.float32, False, 'ieee'), (torch.float32, False, 'tf32'),
             (torch.float16, True, 'ieee'), (torch.bfloat16, True, 'ieee')]

    def sig(fn, ptrs, const):
        out = {}
        for a in fn.arg_names:
            out[a] = 'constexpr' if a in const else ptrs.get(a, 'i32')
        return out

    variants = []
    for dtype, cast, prec in modes:
        xt = '*' + _TT[dtype]
        tag = f'{_TT[dtype]}-{prec}' if dtype == torch.float32 else _TT[
            dtype]
        for stride in (1, 2):
            for hard in (False, True):
                const = fwd_meta(cast, prec, hard, stride, k, num_dilations,
                                 blocks['fwd'])
                ptrs = dict(x_ptr=xt, w_ptr=xt, b_ptr='*fp32',
                            p_ptr='*i64' if hard else '*fp32',
                            psum_ptr='*fp32', dil_ptr='*i32', out_ptr=xt)
                variants.append(KernelVariant(
                    f'fwd-{tag}-s{stride}-{"hard" if hard else "soft"}',
                    fwd_kernel, sig(fwd_kernel, ptrs, const), const))
            const = input_gemm_meta(cast, prec, stride, k, num_dilations,
                                    blocks['input_gemm'])
            ptrs = dict(go_ptr=xt, w_ptr=xt, p_ptr='*fp32', psum_ptr='*fp32',
                        dil_ptr='*i32', gx_ptr=xt)
            variants.append(KernelVariant(
                f'bwd_input_gemm-{tag}-s{stride}', bwd_input_gemm_kernel,
                sig(bwd_input_gemm_kernel, ptrs, const), const))
            const = weight_meta(cast, prec, stride, k, num_dilations,
                                blocks['weight'])
            # grad_weight in the weight's dtype: fp32, or the compute
            # dtype for a half weight (suffix -w<dtype>)
            for gwt in ('*fp32', ) if dtype == torch.float32 else (
                    '*fp32', xt):
                ptrs = dict(go_ptr=xt, x_ptr=xt, p_ptr='*fp32',
                            dil_ptr='*i32', gw_ptr=gwt)
                w_tag = '' if gwt == '*fp32' else f'-w{_TT[dtype]}'
                variants.append(KernelVariant(
                    f'bwd_weight-{tag}-s{stride}{w_tag}', bwd_weight_kernel,
                    sig(bwd_weight_kernel, ptrs, const), const))
            for cols, probs, suffix in ((True, True, ''),
                                        (True, False, '-cols'),
                                        (False, True, '-probs')):
                const = cols_meta(cast, prec, stride, k, num_dilations, cols,
                                  probs, blocks['cols'])
                ptrs = dict(go_ptr=xt, w_ptr=xt, x_ptr=xt, dil_ptr='*i32',
                            g_ptr=xt, part_ptr='*fp32')
                s_tag = '' if stride == 1 and not suffix else f'-s{stride}'
                variants.append(KernelVariant(
                    f'bwd_cols-{tag}{s_tag}{suffix}', bwd_cols_kernel,
                    sig(bwd_cols_kernel, ptrs, const), const))
            if prec == 'ieee':  # no tl.dot: one variant per dtype
                const = gather_meta(stride, k, num_dilations,
                                    blocks['input'])
                ptrs = dict(gc_ptr=xt, p_ptr='*fp32', psum_ptr='*fp32',
                            dil_ptr='*i32', gx_ptr=xt)
                variants.append(KernelVariant(
                    f'bwd_input-{_TT[dtype]}-s{stride}', bwd_input_kernel,
                    sig(bwd_input_kernel, ptrs, const), const))
                const = probs_meta(blocks['probs'])
                ptrs = dict(part_ptr='*fp32', gp_ptr='*fp32')
                variants.append(KernelVariant(
                    f'bwd_probs-{_TT[dtype]}-s{stride}', bwd_probs_kernel,
                    sig(bwd_probs_kernel, ptrs, const), const))
    return variants
