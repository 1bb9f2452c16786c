"""PAD calls of the GPU check: their description (:class:`CallSpec`), the
inputs, a run of one implementation, the comparison with the float64
reference, timers and the TF32 switch."""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import gumbel_softmax, pad_conv2d, pad_conv2d_hard, tf32_enabled
from ..calls import sync, time_run
from ..selfcheck import uninitialized_as_nan
from ..shapes import conv_out_size

__all__ = ['CallSpec', 'masters', 'run_call', 'rel_err', 'check_call',
           'tf32', 'time_ms', 'peak_mib', 'OUTPUTS', 'DTYPES']

DTYPES = {'float32': torch.float32, 'float16': torch.float16,
          'bfloat16': torch.bfloat16}
OUTPUTS = ('out', 'grad_input', 'grad_weight', 'grad_bias', 'grad_probs')
_FLOOR = {torch.float16: 2e-3, torch.bfloat16: 1e-2}


@dataclass(frozen=True)
class CallSpec:
    """One PAD call. ``layout``: ``'nchw'``, ``'channels_last'`` or
    ``'sliced'`` (a strided view into a larger tensor, probs too);
    ``mode``: ``'soft'``, ``'straight_through'`` or ``'hard'``;
    ``autocast``: None or the autocast dtype (the input and weight are
    then float32); ``tf32``: None (TF32 off for float32), ``'conv'``
    (on through ``cudnn.conv.fp32_precision``) or ``'legacy'`` (on
    through ``cudnn.allow_tf32``); ``chunked``: the backward's buffers
    forced to one image per chunk; ``bwd_path``: how the Triton backward
    forms grad_input (``'auto'``, ``'buffer'``, ``'gemm'``; see
    :data:`pad_mm.ops.triton_pad.BWD_INPUT_PATHS`)."""
    n: int
    c_in: int
    c_out: int
    size: tuple[int, int]
    dtype: str = 'bfloat16'
    layout: str = 'channels_last'
    mode: str = 'soft'
    groups: int = 1
    k: int = 3
    dil: tuple[int, ...] = (1, 2, 4)
    stride: int = 1
    autocast: str | None = None
    tf32: str | None = None
    chunked: bool = False
    bias: bool = True
    bwd_path: str = 'auto'

    def describe(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def compute_dtype(self) -> torch.dtype:
        return DTYPES[self.autocast or self.dtype]

    @property
    def out_size(self) -> tuple[int, int]:
        return tuple(conv_out_size(s, self.k, self.stride)
                     for s in self.size)


def masters(spec: CallSpec, seed: int = 0) -> tuple[Tensor, ...]:
    """float64 CPU input, weight, bias and logits, the first three rounded
    to the compute dtype (both sides of a comparison see equal inputs)."""
    g = torch.Generator().manual_seed(seed)
    cg = spec.c_in // spec.groups
    x = torch.randn(spec.n, spec.c_in, *spec.size, generator=g,
                    dtype=torch.float64)
    w = torch.randn(spec.c_out, cg, spec.k, spec.k, generator=g,
                    dtype=torch.float64) / (cg * spec.k**2)**0.5
    b = torch.randn(spec.c_out, generator=g, dtype=torch.float64)
    lg = torch.randn(spec.n, len(spec.dil), *spec.out_size, generator=g,
                     dtype=torch.float64)
    x, w, b = (t.to(spec.compute_dtype).double() for t in (x, w, b))
    return x, w, b, lg


def _placed(t: Tensor, layout: str) -> Tensor:
    if layout == 'channels_last':
        return t.contiguous(memory_format=torch.channels_last)
    if layout == 'sliced':  # a view into a larger tensor
        big = torch.zeros(*t.shape[:-2], t.shape[-2] + 3, t.shape[-1] + 5,
                          dtype=t.dtype, device=t.device)
        view = big[..., 1:1 + t.shape[-2], 2:2 + t.shape[-1]]
        return view.copy_(t)
    return t.contiguous()


def run_call(impl: str, spec: CallSpec, data: tuple[Tensor, ...],
             device: torch.device, dtype: torch.dtype | None = None,
             layout: str | None = None, backward: bool = True
             ) -> list[Tensor]:
    """Output and gradients (input, weight, bias[, logits]) of ``impl`` as
    float64 CPU tensors. ``dtype=None``: the spec's; ``torch.float64``:
    the ground truth (no autocast)."""
    x, w, b, lg = data
    truth = dtype == torch.float64
    dtype = dtype or DTYPES[spec.dtype]
    layout = layout or spec.layout
    xd = _placed(x.to(device, dtype), layout).requires_grad_(backward)
    leaves = [xd] + [t.to(device, dtype).requires_grad_(backward)
                     for t in (w, b)]
    lgd = lg.to(device).requires_grad_(backward)
    ac = torch.autocast(device.type, dtype=DTYPES[spec.autocast]) \
        if spec.autocast and not truth else contextlib.nullcontext()
    bias = leaves[2] if spec.bias else None
    with ac:
        if spec.mode == 'hard':
            index = _placed(lgd.detach().argmax(1), 'nchw' if layout ==
                            'channels_last' else layout)
            out = pad_conv2d_hard(xd, leaves[1], bias, index, spec.dil,
                                  spec.stride, spec.groups, impl=impl)
            diff = leaves[:2] + ([bias] if spec.bias else [])
        else:
            if spec.mode == 'soft':
                probs = torch.softmax(lgd, 1)
            else:  # straight-through, fixed noise
                gen = torch.Generator(device=device).manual_seed(3)
                probs = gumbel_softmax(lgd, tau=0.7, hard=True,
                                       generator=gen)
            probs = probs.to(torch.float32 if spec.autocast and not truth
                             else dtype)
            if layout == 'sliced':
                probs = _placed(probs.detach(), 'sliced').copy_(probs)
            out = pad_conv2d(xd, leaves[1], bias, probs, spec.dil,
                             spec.stride, spec.groups, impl=impl)
            diff = leaves[:2] + ([bias] if spec.bias else []) + [lgd]
    outs = [out.detach()]
    if backward and out.numel():
        go = torch.randn(out.shape, generator=torch.Generator().manual_seed(
            9), dtype=torch.float64).to(device, out.dtype)
        outs += [g.detach() for g in torch.autograd.grad(out, diff, go)]
    elif backward:
        outs += [torch.zeros_like(t) for t in diff]
    return [t.double().cpu() for t in outs]


def rel_err(a: Tensor, e: Tensor) -> float:
    """max |a - e| / max |e| (0 for empty tensors; inf for a shape
    mismatch; NaN stays NaN)."""
    if a.shape != e.shape:
        return float('inf')
    if not e.numel():
        return 0.0
    return ((a - e).abs().max() / e.abs().max().clamp(min=1e-12)).item()


@contextlib.contextmanager
def tf32(mode: str | None) -> Iterator[None]:
    """TF32 for float32 convs and the fp32 kernels: off (None), or on
    through ``'conv'`` (``cudnn.conv.fp32_precision``) or ``'legacy'``
    (``cudnn.allow_tf32``). Restores the flags (torch >= 2.9: the
    ``fp32_precision`` values only; reading the legacy flag while conv and
    RNN differ raises)."""
    cudnn = torch.backends.cudnn
    flags = [(o, 'fp32_precision') for o in (
        torch.backends, cudnn, getattr(cudnn, 'conv', None),
        getattr(cudnn, 'rnn', None))]
    if all(o is not None and hasattr(o, a) for o, a in flags):
        saved = [(o, a, getattr(o, a)) for o, a in flags]
    else:
        saved = [(cudnn, 'allow_tf32', cudnn.allow_tf32)]
    try:
        if mode == 'legacy' or len(saved) == 1:
            cudnn.allow_tf32 = mode is not None
        else:
            cudnn.conv.fp32_precision = 'tf32' if mode else 'ieee'
        yield
    finally:
        for o, a, v in saved:
            setattr(o, a, v)


def check_call(spec: CallSpec, device: torch.device, impl: str = 'triton',
               repeat: bool = False, backward: bool = True,
               chunk_context: Callable | None = None) -> dict:
    """``impl`` against the float64 reference on the same rounded inputs,
    run with uninitialised memory NaN. float32 without TF32: tolerance
    1e-4; with TF32 5e-3; fp16/bf16: 4x cuDNN's own error in that dtype
    (the reference's convs on the same inputs), at least 2e-3 / 1e-2.
    ``repeat``: run twice, ``deterministic`` = bitwise equal."""
    data = masters(spec)
    names = [n for n in OUTPUTS if backward or n == 'out']
    if spec.mode == 'hard' or not backward:
        names = [n for n in names if n != 'grad_probs']
    if not spec.bias:
        names = [n for n in names if n != 'grad_bias']
    exp = run_call('reference', spec, data, device, torch.float64,
                   'nchw', backward)
    cdt = spec.compute_dtype
    ctx = chunk_context() if chunk_context else contextlib.nullcontext()
    with tf32(spec.tf32):
        tf32_on = tf32_enabled()
        with ctx, uninitialized_as_nan():
            got = run_call(impl, spec, data, device, backward=backward)
            again = run_call(impl, spec, data, device,
                             backward=backward) if repeat else None
        cudnn_err = None
        if cdt == torch.float32:
            tol = {n: 5e-3 if spec.tf32 else 1e-4 for n in names}
        else:
            base = run_call('reference', spec, data, device, cdt,
                            spec.layout, backward)
            cudnn_err = {n: rel_err(a, e) for n, a, e in
                         zip(names, base, exp)}
            tol = {n: max(4 * v, _FLOOR[cdt]) for n, v in cudnn_err.items()}
    errors = {n: rel_err(a, e) for n, a, e in zip(names, got, exp)}
    res = dict(spec=spec.describe(), impl=impl, errors=errors,
               tolerance=tol, cudnn_errors=cudnn_err, tf32_enabled=tf32_on,
               status='passed' if all(errors[n] <= tol[n] for n in names)
               and tf32_on == bool(spec.tf32) else 'failed')
    if again is not None:
        res['deterministic'] = all(torch.equal(a, c)
                                   for a, c in zip(got, again))
    return res


def time_ms(fn: Callable[[], object], device: torch.device, repeats: int,
            warmup: int) -> float:
    """Median milliseconds of ``fn()`` (CUDA events on CUDA)."""
    return time_run(fn, device, repeats, warmup) * 1e3


def peak_mib(device: torch.device, fn: Callable[[], object]
             ) -> float | None:
    """Peak CUDA memory of ``fn()`` above what was allocated before, MiB
    (None off CUDA: no allocator statistics)."""
    if device.type != 'cuda':
        fn()
        return None
    sync(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    sync(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20
