"""Safety of ``impl='auto'``: self-checks, timings and fallbacks.

An implementation registered with ``checked=True`` (the Triton kernels) is
picked by ``impl='auto'`` only if both hold:

1. it passed a one-time **self-check** in this process for this device,
   compute dtype and family (``'soft'``: :func:`pad_conv2d`, ``'hard'``:
   :func:`pad_conv2d_hard`): forward and backward on small cases that cross
   the usual tile sizes (80 -> 96 channels, 13 x 17 pixels, batch 2;
   stride 1 / groups 1 / soft probs / NCHW, and stride 2 / groups 2 /
   straight-through probs / channels_last / float32 weights with half
   activations), compared with the reference in float64 on the same
   rounded inputs (:func:`self_check`);
2. it **measured faster** than the reference on the first call of its
   shape class, cached per (device, dtype, C_in, C_out, groups, k, stride,
   H*W bucket, D, training) like ``cudnn.benchmark``.

Any exception or mismatch, in the self-check, the timing, a forward or a
backward, marks the implementation failed for that device and dtype for the
rest of the process, with one warning naming it and the error; the call is
then recomputed through the reference (a failed backward recomputes the
reference's forward and backward on the saved inputs). The self-checks and
choices are logged once each on the ``pad_mm.ops`` logger (INFO).
:func:`dispatch_report` returns them.
"""
from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    'Impl', 'SelfCheckError', 'self_check', 'dispatch_report',
    'reset_dispatch_state'
]

logger = logging.getLogger('pad_mm.ops')

PADImpl = Callable[..., Tensor]
Predicate = Callable[..., bool]

_HALF = (torch.float16, torch.bfloat16)
#: self-check tolerance: max |got - float64 reference| / max |reference|,
#: per output and gradient (fp32 may run in TF32 like cuDNN)
CHECK_TOL = {torch.float32: 5e-3, torch.float16: 5e-3,
             torch.bfloat16: 3e-2}
#: float64 (and other) dtypes are checked this tight
_DEFAULT_TOL = 1e-6
_TIMING_REPEATS = 3


@dataclass
class Impl:
    """A registered implementation.

    ``supports(input, weight, probs_or_index, dilations, stride, groups)``:
    correct for these inputs; ``prefer``: ``auto`` may consider it;
    ``checked``: ``auto`` additionally requires a passed self-check and a
    timing win (see the module docstring)."""
    fn: PADImpl
    supports: Predicate
    prefer: Predicate
    checked: bool = False


class SelfCheckError(RuntimeError):
    """An implementation's output or gradient differs from the reference."""


# (name, family, device, dtype) -> None (passed) or the error (failed)
_CHECKS: dict[tuple, BaseException | None] = {}
# (name, family, shape class) -> (picked, impl seconds, reference seconds)
_TIMINGS: dict[tuple, tuple[bool, float, float]] = {}
_CHECK_RESULTS: dict[tuple, dict] = {}


def reset_dispatch_state() -> None:
    """Forget every self-check and timing (tests; a new process starts
    empty)."""
    _CHECKS.clear()
    _TIMINGS.clear()
    _CHECK_RESULTS.clear()


def dispatch_report() -> dict:
    """The self-checks and timing choices made so far in this process, as
    plain data (``{'checks': [...], 'choices': [...]}``)."""
    checks = []
    for (name, family, dev, dtype), err in _CHECKS.items():
        checks.append(dict(impl=name, family=family, device=dev,
                           dtype=str(dtype).replace('torch.', ''),
                           passed=err is None,
                           error=None if err is None else repr(err),
                           max_rel_err=_CHECK_RESULTS.get(
                               (name, family, dev, dtype), {})))
    choices = [
        dict(impl=name, family=family, shape_class=list(map(str, cls)),
             picked=picked, impl_ms=t_impl * 1e3, reference_ms=t_ref * 1e3)
        for (name, family, cls), (picked, t_impl, t_ref) in _TIMINGS.items()
    ]
    return dict(checks=checks, choices=choices)


def compute_dtype_key(input: Tensor) -> torch.dtype:
    """The dtype a call computes in: autocast's for autocast-eligible
    inputs, else the input's."""
    dev = input.device.type
    if input.dtype in (torch.float32, ) + _HALF and \
            torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return input.dtype


def _fail(name: str, family: str, device: str, dtype: torch.dtype,
          err: BaseException, where: str) -> None:
    key = (name, family, device, dtype)
    if key in _CHECKS and _CHECKS[key] is not None:
        return  # warned already
    _CHECKS[key] = err
    warnings.warn(
        f"pad_mm: PAD implementation {name!r} ({family}) failed its {where} "
        f'on {device} {dtype}: {err!r}; impl=\'auto\' uses the reference '
        'for the rest of this process', RuntimeWarning, stacklevel=3)


# ----------------------------------------------------------- self-check ---


def _check_cases(device: torch.device, dtype: torch.dtype, hard: bool,
                 entry: Impl) -> list[dict]:
    """The two self-check cases (float64 masters rounded to ``dtype``)."""
    cases = []
    dil = (1, 2, 4)
    for i, (stride, groups, cl) in enumerate([(1, 1, False), (2, 2, True)]):
        g = torch.Generator().manual_seed(1234 + i)
        n, c_in, c_out, k, size = 2, 80, 96, 3, (13, 17)
        h_out, w_out = (size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1
        x = torch.randn(n, c_in, *size, generator=g, dtype=torch.float64)
        w = torch.randn(c_out, c_in // groups, k, k, generator=g,
                        dtype=torch.float64) / (c_in // groups * k * k)**0.5
        b = torch.randn(c_out, generator=g, dtype=torch.float64)
        logits = torch.randn(n, len(dil), h_out, w_out, generator=g,
                             dtype=torch.float64)
        x, w, b = (t.to(dtype).double() for t in (x, w, b))
        # case 2: fp32 weight and bias with half activations (AMP keeps
        # fp32 parameters) if the implementation takes them
        w_dtype = p_dtype = dtype
        if i and dtype in _HALF:
            xd = x.to(device, dtype)
            wd = w.to(device, torch.float32)
            sel = logits.argmax(1).to(device) if hard else \
                torch.softmax(logits, 1).to(device, torch.float32)
            if entry.supports(xd, wd, sel, dil, stride, groups):
                w_dtype = p_dtype = torch.float32
        cases.append(dict(x=x, w=w, b=b, logits=logits, dil=dil,
                          stride=stride, groups=groups, channels_last=cl,
                          w_dtype=w_dtype, p_dtype=p_dtype,
                          straight_through=bool(i)))
    return cases


def _probs(logits: Tensor, straight_through: bool) -> Tensor:
    soft = torch.softmax(logits, 1)
    if not straight_through:
        return soft
    one_hot = F.one_hot(soft.argmax(1), logits.shape[1]).permute(0, 3, 1, 2)
    return one_hot.to(soft.dtype) - soft.detach() + soft


def _run_case(fn: PADImpl, case: dict, device: torch.device,
              dtype: torch.dtype | None, hard: bool,
              go: Tensor) -> list[Tensor]:
    """Output and gradients (input, weight, bias[, logits]) as float64 CPU
    tensors; ``dtype=None``: the float64 ground truth on the CPU."""
    ref = dtype is None
    dev = torch.device('cpu') if ref else device
    xd = case['x'].to(dev, torch.float64 if ref else dtype)
    if case['channels_last']:
        xd = xd.contiguous(memory_format=torch.channels_last)
    wd = case['w'].to(dev, torch.float64 if ref else case['w_dtype'])
    bd = case['b'].to(dev, torch.float64 if ref else case['w_dtype'])
    leaves = [t.detach().requires_grad_() for t in (xd, wd, bd)]
    lg = case['logits'].to(dev).detach().requires_grad_()
    if hard:
        sel = case['logits'].argmax(1).to(dev)
        out = fn(*leaves, sel, case['dil'], case['stride'], case['groups'])
        grads = torch.autograd.grad(out, leaves, go.to(dev, out.dtype))
    else:
        probs = _probs(lg, case['straight_through']).to(
            torch.float64 if ref else case['p_dtype'])
        out = fn(*leaves, probs, case['dil'], case['stride'],
                 case['groups'])
        grads = torch.autograd.grad(out, leaves + [lg],
                                    go.to(dev, out.dtype))
    if not ref and out.dtype != dtype:
        raise SelfCheckError(f'output dtype {out.dtype}, expected {dtype}')
    for leaf, gr in zip(leaves, grads):
        if gr is not None and gr.dtype != leaf.dtype:
            raise SelfCheckError(f'gradient dtype {gr.dtype} for a '
                                 f'{leaf.dtype} argument')
    return [t.detach().double().cpu() for t in (out, *grads)]


def self_check(fn: PADImpl, device: torch.device | str, dtype: torch.dtype,
               hard: bool = False, supports: Predicate | None = None,
               reference: PADImpl | None = None) -> dict[str, float]:
    """Check ``fn`` (the :func:`pad_conv2d` contract, or with ``hard=True``
    the :func:`pad_conv2d_hard` one) against the float64 reference.

    Runs forward and backward of both self-check cases (see the module
    docstring) on ``device`` in ``dtype``, with autocast off and without
    touching the global RNG. Returns the max relative error of each output
    (``'s1/out'``, ``'s2/grad_weight'``, ...); raises
    :class:`SelfCheckError` when one exceeds ``CHECK_TOL[dtype]`` (or any
    exception ``fn`` raises).
    """
    from .reference import pad_conv2d_hard_reference, pad_conv2d_reference
    device = torch.device(device)
    if reference is None:
        reference = pad_conv2d_hard_reference if hard else \
            pad_conv2d_reference
    # mixed weight dtypes only where ``supports`` says they are taken
    entry = Impl(fn, supports or (lambda *a: False), lambda *a: True)
    tol = CHECK_TOL.get(dtype, _DEFAULT_TOL)
    names = ['out', 'grad_input', 'grad_weight', 'grad_bias']
    if not hard:
        names.append('grad_probs')
    errors = {}
    # also from inside no_grad / inference_mode (an eval loop's first call)
    with torch.inference_mode(False), torch.enable_grad(), \
            torch.autocast(device.type, enabled=False):
        for case in _check_cases(device, dtype, hard, entry):
            tag = f"s{case['stride']}"
            exp = _run_case(reference, case, device, None, hard,
                            _grad_out(case))
            got = _run_case(fn, case, device, dtype, hard, _grad_out(case))
            for name, a, e in zip(names, got, exp):
                if a.shape != e.shape:
                    raise SelfCheckError(f'{tag}/{name}: shape '
                                         f'{tuple(a.shape)}, expected '
                                         f'{tuple(e.shape)}')
                err = ((a - e).abs().max() /
                       e.abs().max().clamp(min=1e-12)).item()
                errors[f'{tag}/{name}'] = err
                if not err <= tol:  # also catches NaN
                    raise SelfCheckError(
                        f'{tag}/{name}: max relative error {err:.3g} > '
                        f'{tol:g} (stride {case["stride"]}, groups '
                        f'{case["groups"]}, {dtype})')
    return errors


def _grad_out(case: dict) -> Tensor:
    g = torch.Generator().manual_seed(99)
    n, _, h, w = case['x'].shape
    s = case['stride']
    return torch.randn(n, case['w'].shape[0], (h - 1) // s + 1,
                       (w - 1) // s + 1, generator=g, dtype=torch.float64)


def verified(name: str, entry: Impl, family: str, input: Tensor,
             reference: PADImpl) -> bool:
    """Whether ``name`` passed its self-check for ``input``'s device and
    compute dtype (running it the first time)."""
    dev = str(input.device)
    dtype = compute_dtype_key(input)
    key = (name, family, dev, dtype)
    if key in _CHECKS:
        return _CHECKS[key] is None
    try:
        errors = self_check(entry.fn, input.device, dtype,
                            hard=family == 'hard', supports=entry.supports,
                            reference=reference)
    except Exception as err:  # any failure: never pick it
        _fail(name, family, dev, dtype, err, 'self-check')
        return False
    _CHECKS[key] = None
    _CHECK_RESULTS[key] = errors
    logger.info('pad_mm: self-check passed: %s (%s) on %s %s, max relative '
                'error %.3g', name, family, dev, dtype,
                max(errors.values()) if errors else 0.0)
    return True


def failed(name: str, family: str, input: Tensor) -> bool:
    """Whether ``name`` failed for ``input``'s device and dtype."""
    key = (name, family, str(input.device), compute_dtype_key(input))
    return _CHECKS.get(key) is not None


# --------------------------------------------------------------- timing ---


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_call(name: str, run: Callable[[], Any],
              device: torch.device) -> float:
    """Median seconds of ``run()`` after one warm-up (which compiles)."""
    run()
    _sync(device)
    times = []
    for _ in range(_TIMING_REPEATS):
        t0 = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return median(times)


def shape_class(input: Tensor, weight: Tensor, sel: Tensor,
                dilations: tuple[int, ...], stride: int, groups: int,
                train: bool) -> tuple:
    """The timing cache key (like ``cudnn.benchmark``'s, with the pixel
    count bucketed to powers of two)."""
    hw = input.shape[2] * input.shape[3]
    return (str(input.device), compute_dtype_key(input), input.shape[1],
            weight.shape[0], groups, weight.shape[-1], stride,
            hw.bit_length(), len(dilations), train)


def _needs_grad(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in tensors)


def faster(name: str, entry: Impl, family: str, reference: PADImpl,
           input: Tensor, weight: Tensor, sel: Tensor,
           dilations: tuple[int, ...], stride: int, groups: int) -> bool:
    """Whether ``name`` measured faster than the reference on this shape
    class (timing it against the reference on the first call: forward, or
    forward + backward when gradients are needed)."""
    train = _needs_grad(input, weight, sel)
    cls = shape_class(input, weight, sel, dilations, stride, groups, train)
    key = (name, family, cls)
    if key in _TIMINGS:
        return _TIMINGS[key][0]
    leaves = [t.detach().requires_grad_(t.requires_grad)
              for t in (input, weight)]
    s = sel.detach().requires_grad_(sel.requires_grad) \
        if sel.is_floating_point() else sel

    def runner(fn):
        def run():
            out = fn(*leaves, None, s, dilations, stride, groups)
            if train:
                diff = [t for t in (*leaves, s) if t.requires_grad]
                torch.autograd.grad(out, diff, torch.ones_like(out))
        return run

    try:
        t_impl = time_call(name, runner(entry.fn), input.device)
    except Exception as err:
        _fail(name, family, str(input.device), compute_dtype_key(input),
              err, 'timing run')
        return False
    t_ref = time_call('reference', runner(reference), input.device)
    picked = t_impl < t_ref
    _TIMINGS[key] = (picked, t_impl, t_ref)
    logger.info('pad_mm: %s %s for %s: %.3f ms vs reference %.3f ms', name,
                'picked' if picked else 'not picked', cls, t_impl * 1e3,
                t_ref * 1e3)
    return picked


def capturing(input: Tensor) -> bool:
    """CUDA graph capture in progress (no self-check or timing then)."""
    return input.is_cuda and torch.cuda.is_current_stream_capturing()


def decided(name: str, family: str, input: Tensor, weight: Tensor,
            sel: Tensor, dilations: tuple[int, ...], stride: int,
            groups: int) -> bool:
    """Checked and picked already (no new measurement)."""
    key = (name, family, str(input.device), compute_dtype_key(input))
    if key not in _CHECKS or _CHECKS[key] is not None:
        return False
    cls = shape_class(input, weight, sel, dilations, stride, groups,
                      _needs_grad(input, weight, sel))
    return _TIMINGS.get((name, family, cls), (False, ))[0]


# ------------------------------------------------------------- guarding ---


class _Guarded(torch.autograd.Function):
    """Runs a checked implementation; recomputes through the reference if
    its forward or backward raises."""

    @staticmethod
    def forward(ctx, call, input, weight, bias, sel):
        leaves = [
            None if t is None else
            t.detach().requires_grad_(t.requires_grad)
            if t.is_floating_point() else t
            for t in (input, weight, bias, sel)
        ]
        dev = input.device.type
        ctx.autocast = (dev, torch.is_autocast_enabled(dev),
                        torch.get_autocast_dtype(dev))
        with torch.enable_grad():
            out = call.run(call.fn, leaves, 'forward')
        ctx.call, ctx.leaves, ctx.out = call, leaves, out
        return out.detach()

    @staticmethod
    def backward(ctx, grad_out):
        call, leaves, out = ctx.call, ctx.leaves, ctx.out
        ctx.out = None
        diff = [i for i, t in enumerate(leaves)
                if t is not None and t.requires_grad]
        inputs = [leaves[i] for i in diff]
        try:
            grads = torch.autograd.grad(out, inputs, grad_out,
                                        allow_unused=True)
        except Exception as err:
            call.fail(err, 'backward')
            dev, enabled, dtype = ctx.autocast
            with torch.enable_grad(), torch.autocast(dev, dtype=dtype,
                                                     enabled=enabled):
                ref = call.reference(*leaves, *call.rest)
            grads = torch.autograd.grad(ref, inputs, grad_out.to(ref.dtype),
                                        allow_unused=True)
        result = [None] * 4
        for i, g in zip(diff, grads):
            result[i] = g
        return (None, *result)


class GuardedCall:
    """One call of a checked implementation with its reference fallback."""

    def __init__(self, name: str, family: str, fn: PADImpl,
                 reference: PADImpl, device: str, dtype: torch.dtype,
                 rest: tuple) -> None:
        self.name, self.family, self.fn = name, family, fn
        self.reference, self.rest = reference, rest
        self.device, self.dtype = device, dtype

    def fail(self, err: BaseException, where: str) -> None:
        _fail(self.name, self.family, self.device, self.dtype, err, where)

    def run(self, fn: PADImpl, args: list, where: str) -> Tensor:
        try:
            return fn(*args, *self.rest)
        except Exception as err:
            self.fail(err, where)
            return self.reference(*args, *self.rest)

    def __call__(self, input: Tensor, weight: Tensor, bias: Tensor | None,
                 sel: Tensor) -> Tensor:
        if _needs_grad(input, weight, bias, sel):
            return _Guarded.apply(self, input, weight, bias, sel)
        return self.run(self.fn, [input, weight, bias, sel], 'forward')
