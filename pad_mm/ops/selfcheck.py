"""Self-checks of PAD implementations against the float64 reference.

:func:`self_check` runs an implementation forward and backward on small
cases and compares every output and gradient with the reference computed
in float64 on the CPU from the same rounded inputs:

* two fixed cases that cross the usual tile sizes (80 -> 96 channels,
  13 x 17 pixels, batch 2): stride 1 / groups 1 / soft probs / NCHW, and
  stride 2 / groups 2 / straight-through probs / channels_last / float32
  weights with half activations (where the implementation takes them);
* with a :class:`CheckSpec` (:func:`check_spec` of a real call), a third
  case, ``'call'``, that compiles the same code as that call: the same
  k, number of dilations, stride, weight dtype, memory formats and data
  alignment, and for every integer a launch passes (sizes, pixel counts,
  strides) the same ``== 1`` and ``% 16 == 0`` properties, which is what
  Triton specialises its compiled code on. The dispatcher runs the
  fixed cases once per implementation, device and dtype, and the ``call``
  case once per check key.

The implementation runs with uninitialised memory filled with NaN
(:func:`uninitialized_as_nan`), so an output element it never writes
fails the check instead of passing on whatever an earlier run left there.
"""
from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .shapes import conv_out_size

__all__ = [
    'SelfCheckError', 'CheckSpec', 'check_spec', 'self_check',
    'uninitialized_as_nan', 'CHECK_TOL', 'launch_ints', 'CheckContext'
]

HALF = (torch.float16, torch.bfloat16)
#: self-check tolerance: max |got - float64 reference| / max |reference|,
#: per output and gradient (fp32 may run in TF32 like cuDNN)
CHECK_TOL = {torch.float32: 5e-3, torch.float16: 5e-3,
             torch.bfloat16: 3e-2}
#: float64 (and other) dtypes are checked this tight
DEFAULT_TOL = 1e-6


class SelfCheckError(RuntimeError):
    """An implementation's output or gradient differs from the reference."""


@contextlib.contextmanager
def uninitialized_as_nan() -> Iterator[None]:
    """Within the block, ``torch.empty`` and friends return memory filled
    with NaN (integers: their largest value), through torch's
    deterministic mode (``warn_only``, its warnings silenced) with
    ``torch.utils.deterministic.fill_uninitialized_memory``. Restores both
    settings. A process-wide switch: not for concurrent threads."""
    was_on = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    was_fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore',
                                    message='.*deterministic implementation')
            warnings.filterwarnings('ignore', message='.*CUBLAS_WORKSPACE')
            yield
    finally:
        torch.use_deterministic_algorithms(was_on, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = was_fill


# ------------------------------------------------------ specialisations ---


def _layout(t: Tensor) -> str:
    if t.is_contiguous():
        return 'contiguous'
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return 'channels_last'
    return 'strided'


def _aligned(t: Tensor) -> bool:
    return t.data_ptr() % 16 == 0


def launch_ints(input: Tensor, weight: Tensor, sel: Tensor,
                stride: int, groups: int) -> tuple[int, ...]:
    """The integers a kernel launch for this call passes (pixel counts,
    sizes, channels per group, and the strides of the input, of ``sel``
    and of an output in the input's memory format)."""
    n, c, h, w = input.shape
    c_out, k = weight.shape[0], weight.shape[-1]
    ho, wo = conv_out_size(h, k, stride), conv_out_size(w, k, stride)
    fmt = torch.channels_last if _layout(input) == 'channels_last' \
        else torch.contiguous_format
    out_stride = torch.empty((n, c_out, ho, wo), device='meta',
                             memory_format=fmt).stride()
    return (n * ho * wo, h, w, ho, wo, c_out // groups, c // groups, c,
            n * h * w, *input.stride(), *sel.stride(), *out_stride)


def _flags(ints: Sequence[int]) -> tuple:
    return tuple((v == 1, v % 16 == 0) for v in ints)


@dataclass(frozen=True)
class CheckSpec:
    """A self-check case standing for a call (see the module docstring).

    ``key``: what of the call changes the compiled code (the self-check
    cache key beyond implementation, family, device and compute dtype);
    ``exact``: whether the case below reproduces it (else the call cannot
    be checked and ``impl='auto'`` keeps the reference)."""
    key: tuple
    exact: bool
    n: int
    c_in: int
    c_out: int
    groups: int
    size: tuple[int, int]
    k: int
    dilations: tuple[int, ...]
    stride: int
    weight_dtype: torch.dtype
    layout: str
    sel_layout: str
    offsets: tuple[int, int, int]  # elements: input, weight, sel


def _same_class(v: int, small: int, lo: int, mod: int) -> int:
    """A value with v's residue mod ``mod`` (so products keep their
    divisibility by 16), v itself up to ``small``, else in [lo, lo+mod)."""
    if v <= small:
        return v
    return lo + (v - lo) % mod


def _pow2_class(v: int) -> int:
    """A small value with v's factors of 2 up to 16 (and ``!= 1`` unless
    v is 1)."""
    p = 1
    while v % (2 * p) == 0 and p < 16:
        p *= 2
    return 3 if p == 1 and v != 1 else p


_SPECS: dict[tuple, CheckSpec] = {}


def check_spec(input: Tensor, weight: Tensor, sel: Tensor,
               dilations: Sequence[int], stride: int,
               groups: int) -> CheckSpec:
    """The :class:`CheckSpec` of a call (``sel``: probs or index); cached
    per shapes, strides, dtypes and alignment."""
    sig = (tuple(input.shape), input.stride(), tuple(weight.shape),
           weight.stride(), weight.dtype, tuple(sel.shape), sel.stride(),
           sel.dtype, tuple(_aligned(t) for t in (input, weight, sel)),
           tuple(dilations), stride, groups)
    spec = _SPECS.get(sig)
    if spec is None:
        if len(_SPECS) > 4096:
            _SPECS.clear()
        spec = _SPECS[sig] = _make_spec(input, weight, sel, dilations,
                                        stride, groups)
    return spec


def _make_spec(input: Tensor, weight: Tensor, sel: Tensor,
               dilations: Sequence[int], stride: int,
               groups: int) -> CheckSpec:
    n, c, h, w = input.shape
    c_out, cg, k, _ = weight.shape
    cog = c_out // groups
    g = _same_class(groups, 4, 2, 16)
    cg2 = _same_class(cg, 16, 48, 16)
    cog2 = _same_class(cog, 16, 80, 16)
    h2 = _same_class(h, 24, 17, 16 * stride)
    w2 = _same_class(w, 24, 17, 16 * stride)
    n2 = _pow2_class(n)
    layout, sel_layout = _layout(input), _layout(sel)
    offsets = tuple(0 if _aligned(t) else 1 for t in (input, weight, sel))
    key = (k, len(dilations), stride, groups == 1, weight.dtype, layout,
           sel_layout, offsets, _flags(launch_ints(input, weight, sel,
                                                   stride, groups)))
    spec = CheckSpec(key, False, n2, g * cg2, g * cog2, g, (h2, w2), k,
                     tuple(dilations), stride, weight.dtype, layout,
                     sel_layout, offsets)
    meta = _case_tensors(spec, 'meta', torch.float32, sel.dtype)
    exact = layout != 'strided' and sel_layout != 'strided' and _flags(
        launch_ints(meta[0], meta[1], meta[2], stride, g)) == key[-1]
    return dataclasses.replace(spec, exact=exact)


def _placed(t: Tensor, layout: str, offset: int) -> Tensor:
    """``t`` in ``layout`` at ``offset`` elements into its storage."""
    fmt = torch.channels_last if layout == 'channels_last' else \
        torch.contiguous_format
    shaped = t.contiguous(memory_format=fmt) if t.dim() == 4 else \
        t.contiguous()
    if not offset:
        return shaped
    buf = torch.empty(t.numel() + offset, dtype=t.dtype, device=t.device)
    out = buf.as_strided(t.shape, shaped.stride(), offset)
    if t.device.type != 'meta':
        out.copy_(t)
    return out


def _case_tensors(spec: CheckSpec, device, dtype: torch.dtype,
                  sel_dtype: torch.dtype) -> list[Tensor]:
    """Meta tensors (for the flags) laid out like the spec's case."""
    h, w = spec.size
    ho = conv_out_size(h, spec.k, spec.stride)
    wo = conv_out_size(w, spec.k, spec.stride)
    x = torch.empty(spec.n, spec.c_in, h, w, device=device, dtype=dtype)
    wt = torch.empty(spec.c_out, spec.c_in // spec.groups, spec.k, spec.k,
                     device=device, dtype=dtype)
    sel_shape = (spec.n, ho, wo) if not sel_dtype.is_floating_point else \
        (spec.n, len(spec.dilations), ho, wo)
    sel = torch.empty(sel_shape, device=device, dtype=sel_dtype)
    return [_placed(x, spec.layout, spec.offsets[0]),
            _placed(wt, 'contiguous', spec.offsets[1]),
            _placed(sel, spec.sel_layout, spec.offsets[2])]


# ---------------------------------------------------------------- cases ---


def _case(seed: int, n: int, c_in: int, c_out: int, groups: int, k: int,
          size: tuple[int, int], dil: tuple[int, ...], stride: int,
          dtype: torch.dtype, **layout: Any) -> dict:
    g = torch.Generator().manual_seed(seed)
    ho, wo = (conv_out_size(s, k, stride) for s in size)
    x = torch.randn(n, c_in, *size, generator=g, dtype=torch.float64)
    w = torch.randn(c_out, c_in // groups, k, k, generator=g,
                    dtype=torch.float64) / (c_in // groups * k * k)**0.5
    b = torch.randn(c_out, generator=g, dtype=torch.float64)
    logits = torch.randn(n, len(dil), ho, wo, generator=g,
                         dtype=torch.float64)
    x, w, b = (t.to(dtype).double() for t in (x, w, b))
    case = dict(x=x, w=w, b=b, logits=logits, dil=dil, stride=stride,
                groups=groups, layout='contiguous', sel_layout='contiguous',
                offsets=(0, 0, 0), w_dtype=dtype, p_dtype=dtype,
                straight_through=False)
    case.update(layout)
    return case


def _fixed_cases(device: torch.device, dtype: torch.dtype, hard: bool,
                 supports: Callable[..., bool]) -> list[dict]:
    """The two fixed self-check cases (float64 masters rounded to
    ``dtype``)."""
    dil = (1, 2, 4)
    cases = []
    for i, (stride, groups, cl) in enumerate([(1, 1, False), (2, 2, True)]):
        case = _case(1234 + i, 2, 80, 96, groups, 3, (13, 17), dil, stride,
                     dtype, straight_through=bool(i),
                     layout='channels_last' if cl else 'contiguous')
        # case 2: fp32 weight and bias with half activations (AMP keeps
        # fp32 parameters) if the implementation takes them
        if i and dtype in HALF:
            xd = case['x'].to(device, dtype)
            wd = case['w'].to(device, torch.float32)
            lg = case['logits']
            sel = lg.argmax(1).to(device) if hard else \
                torch.softmax(lg, 1).to(device, torch.float32)
            if supports(xd, wd, sel, dil, stride, groups):
                case.update(w_dtype=torch.float32, p_dtype=torch.float32)
        cases.append(case)
    return cases


def _spec_case(spec: CheckSpec, dtype: torch.dtype) -> dict:
    half_weight = dtype in HALF and spec.weight_dtype == torch.float32
    return _case(4321, spec.n, spec.c_in, spec.c_out, spec.groups, spec.k,
                 spec.size, spec.dilations, spec.stride, dtype,
                 layout=spec.layout, sel_layout=spec.sel_layout,
                 offsets=spec.offsets, straight_through=True,
                 w_dtype=torch.float32 if half_weight else dtype,
                 p_dtype=torch.float32 if half_weight else dtype)


def _probs(logits: Tensor, straight_through: bool) -> Tensor:
    soft = torch.softmax(logits, 1)
    if not straight_through:
        return soft
    one_hot = F.one_hot(soft.argmax(1), logits.shape[1]).permute(0, 3, 1, 2)
    return one_hot.to(soft.dtype) - soft.detach() + soft


def _run_case(fn: Callable[..., Tensor], case: dict, device: torch.device,
              dtype: torch.dtype | None, hard: bool,
              go: Tensor) -> list[Tensor]:
    """Output and gradients (input, weight, bias[, logits]) as float64 CPU
    tensors; ``dtype=None``: the float64 ground truth on the CPU."""
    ref = dtype is None
    dev = torch.device('cpu') if ref else device
    offs = (0, 0, 0) if ref else case['offsets']
    xd = _placed(case['x'].to(dev, torch.float64 if ref else dtype),
                 case['layout'], offs[0])
    wd = _placed(case['w'].to(dev, torch.float64 if ref else
                              case['w_dtype']), 'contiguous', offs[1])
    bd = case['b'].to(dev, torch.float64 if ref else case['w_dtype'])
    leaves = [t.detach().requires_grad_() for t in (xd, wd, bd)]
    lg = case['logits'].to(dev).detach().requires_grad_()
    if hard:
        sel = _placed(case['logits'].argmax(1).to(dev), case['sel_layout'],
                      offs[2])
        out = fn(*leaves, sel, case['dil'], case['stride'], case['groups'])
        grads = torch.autograd.grad(out, leaves, go.to(dev, out.dtype))
    else:
        probs = _probs(lg, case['straight_through']).to(
            torch.float64 if ref else case['p_dtype'])
        if not ref:  # the layout of the call (a differentiable copy)
            probs = _placed_grad(probs, case['sel_layout'], offs[2])
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


def _placed_grad(t: Tensor, layout: str, offset: int) -> Tensor:
    """:func:`_placed` keeping the autograd graph."""
    if not offset:
        fmt = torch.channels_last if layout == 'channels_last' else \
            torch.contiguous_format
        return t.contiguous(memory_format=fmt)
    return _placed(t.detach(), layout, offset).copy_(t)


def _grad_out(case: dict) -> Tensor:
    g = torch.Generator().manual_seed(99)
    n, _, h, w = case['x'].shape
    k, s = case['w'].shape[-1], case['stride']
    return torch.randn(n, case['w'].shape[0], conv_out_size(h, k, s),
                       conv_out_size(w, k, s), generator=g,
                       dtype=torch.float64)


#: a context factory, or a sequence of them (see :func:`self_check`)
CheckContext = Callable[[], Any] | Sequence[Callable[[], Any]] | None


def _contexts(context: CheckContext) -> list[Callable[[], Any]]:
    if context is None:
        return []
    if callable(context):
        return [context]
    return list(context)


def self_check(fn: Callable[..., Tensor],
               device: torch.device | str,
               dtype: torch.dtype,
               hard: bool = False,
               supports: Callable[..., bool] | None = None,
               reference: Callable[..., Tensor] | None = None,
               spec: CheckSpec | None = None,
               context: CheckContext = None,
               fixed: bool = True) -> dict[str, float]:
    """Check ``fn`` (the soft :class:`~.impls.base.PADImpl` contract, or
    with ``hard=True`` the hard one) against the float64 reference.

    Runs forward and backward of the cases of the module docstring on
    ``device`` in ``dtype`` with autocast off, uninitialised memory NaN,
    and without touching the global RNG; ``context()`` (e.g. a forced
    multi-chunk backward; or a sequence of such factories) is entered for
    the second fixed case (the first factory), and the ``spec`` case runs
    as called and then under each factory (``'call.ctx1/...'``)
    (``fixed=False``: the ``spec`` case only, for a further check key of
    an implementation whose fixed cases passed).
    ``supports`` says whether fp32 weights with half activations are
    taken. Returns the max relative error of each output
    (``'s1/out'``, ``'s2/grad_weight'``, ``'call/grad_input'``, ...);
    raises :class:`SelfCheckError` when one exceeds ``CHECK_TOL[dtype]``
    (or NaN), or any exception ``fn`` raises.
    """
    from .impls.reference import (pad_conv2d_hard_reference,
                                  pad_conv2d_reference)
    device = torch.device(device)
    if reference is None:
        reference = pad_conv2d_hard_reference if hard else \
            pad_conv2d_reference
    tol = CHECK_TOL.get(dtype, DEFAULT_TOL)
    names = ['out', 'grad_input', 'grad_weight', 'grad_bias']
    if not hard:
        names.append('grad_probs')
    errors = {}
    # also from inside no_grad / inference_mode (an eval loop's first call)
    with torch.inference_mode(False), torch.enable_grad(), \
            torch.autocast(device.type, enabled=False):
        cases = [(f"s{c['stride']}", c) for c in _fixed_cases(
            device, dtype, hard, supports or (lambda *a: False))
                 ] if fixed or spec is None else []
        if spec is not None:
            cases.append(('call', _spec_case(spec, dtype)))
        contexts = _contexts(context)
        runs = []  # (tag, case, context factory or None)
        for i, (tag, case) in enumerate(cases):
            if tag == 'call':  # as called, and under each context
                runs.append((tag, case, None))
                runs += [(f'{tag}.ctx{j}', case, c)
                         for j, c in enumerate(contexts, 1)]
            else:
                runs.append((tag, case, contexts[0] if i and contexts
                             else None))
        for tag, case, make in runs:
            ctx = make() if make is not None else contextlib.nullcontext()
            with ctx, uninitialized_as_nan():
                got = _run_case(fn, case, device, dtype, hard,
                                _grad_out(case))
            exp = _run_case(reference, case, device, None, hard,
                            _grad_out(case))
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
