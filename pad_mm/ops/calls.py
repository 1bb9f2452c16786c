"""Facts about a PAD call that the dispatcher decides on, and its timer."""
from __future__ import annotations

import time
from collections.abc import Callable
from statistics import median
from typing import Any

import torch
from torch import Tensor

__all__ = [
    'is_tracing', 'compute_dtype_key', 'memory_format', 'needs_grad',
    'distributed_world', 'shape_class', 'time_run', 'capturing', 'sync'
]

_HALF = (torch.float16, torch.bfloat16)


def is_tracing() -> bool:
    """Whether the PAD op is being traced, scripted, exported or compiled
    (``impl='auto'`` then runs the reference, which is plain aten ops)."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.compiler.is_compiling()
            or torch.compiler.is_exporting()
            or torch.onnx.is_in_onnx_export())


def compute_dtype_key(input: Tensor) -> torch.dtype:
    """The dtype a call computes in: autocast's for autocast-eligible
    inputs, else the input's."""
    dev = input.device.type
    if input.dtype in (torch.float32, ) + _HALF and \
            torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return input.dtype


def memory_format(t: Tensor) -> str:
    if t.is_contiguous():
        return 'nchw'
    if t.is_contiguous(memory_format=torch.channels_last):
        return 'channels_last'
    return 'strided'


def needs_grad(*tensors: Tensor | None) -> bool:
    """Grad mode on and a floating tensor among ``tensors`` requires
    grad."""
    return torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in tensors)


def distributed_world() -> int:
    """The number of processes of an initialized ``torch.distributed``
    group (1 without one)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def capturing(device: torch.device) -> bool:
    """Whether a CUDA graph is being captured on ``device``'s current
    stream (no checks, timings, host copies or cached allocations then)."""
    return torch.device(device).type == 'cuda' and \
        torch.cuda.is_current_stream_capturing()


def shape_class(input: Tensor, weight: Tensor, sel: Tensor,
                dilations: tuple[int, ...], stride: int, groups: int,
                train: bool) -> tuple:
    """The timing cache key of a call (like ``cudnn.benchmark``'s, with
    the pixel count bucketed to powers of two): device, compute dtype, N,
    C_in, C_out, groups, k, stride, H*W bucket, D, memory format, weight
    dtype, training."""
    hw = input.shape[2] * input.shape[3]
    return (str(input.device), compute_dtype_key(input), input.shape[0],
            input.shape[1], weight.shape[0], groups, weight.shape[-1],
            stride, hw.bit_length(), len(dilations), memory_format(input),
            weight.dtype, train)


def sync(device: torch.device | str) -> None:
    """Wait for the work queued on ``device`` (a no-op off CUDA), so that a
    host clock measures it."""
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_run(run: Callable[[], Any],
             device: torch.device,
             repeats: int,
             warmup: int = 1) -> float:
    """Median seconds of ``run()`` over ``repeats`` runs after ``warmup``
    warm-up runs (the first compiles): CUDA events on CUDA, else
    ``time.perf_counter``."""
    for _ in range(warmup):
        run()
    times = []
    if device.type == 'cuda':
        sync(device)
        for _ in range(repeats):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        return median(times)
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return median(times)
