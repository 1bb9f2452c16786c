"""The :class:`Dispatcher`: which PAD implementation runs a call.

One object (:data:`dispatcher`) owns the registry of implementations, the
choice for ``impl='auto'``, the self-checks, the timing cache and the
fallback. An implementation registered with ``checked=True`` (the Triton
kernels) is picked by ``impl='auto'`` only if all of these hold:

1. it passed a **self-check** in this process for this device, compute
   dtype, family (``'soft'``: :func:`pad_conv2d`, ``'hard'``:
   :func:`pad_conv2d_hard`) and check key: k, the number of dilations,
   stride, weight dtype, memory formats, alignment and Triton's integer
   specialisations of the call (:mod:`pad_mm.ops.selfcheck`);
2. it **measured at least** :attr:`Dispatcher.min_gain` (10%) **faster**
   than the reference on the first call of its shape class (per device,
   dtype, N, C_in, C_out, groups, k, stride, H*W bucket, D, memory
   format, weight dtype, training; CUDA events on CUDA, like
   ``cudnn.benchmark``);
3. ``torch.distributed`` is not initialized with more than one process:
   ranks must run the same implementation (same numerics and memory), and
   per-rank timings could differ, so under DDP ``auto`` does not time and
   keeps the reference for checked implementations (``PAD_MM_IMPL`` or
   ``impl=`` force one on every rank alike).

Failures: see :mod:`pad_mm.ops.guard` (an OOM is raised as an OOM, a
sticky CUDA error as :class:`~pad_mm.ops.guard.FatalDeviceError`, anything
else marks the implementation failed for its check key, warns once and
recomputes through the reference). Self-checks and choices are logged on
the ``pad_mm.ops`` logger (INFO); :meth:`Dispatcher.report` returns them.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .calls import (capturing, compute_dtype_key, distributed_world,
                    is_tracing, needs_grad, shape_class, time_run)
from .guard import GuardedCall, raise_if_unrecoverable
from .impls.reference import pad_conv2d_hard_reference, pad_conv2d_reference
from .selfcheck import (CHECK_TOL, CheckContext, CheckSpec, SelfCheckError,
                        check_spec, self_check)

__all__ = [
    'Impl', 'Dispatcher', 'dispatcher', 'SelfCheckError', 'self_check',
    'dispatch_report', 'reset_dispatch_state', 'is_tracing',
    'compute_dtype_key', 'CHECK_TOL', 'ENV_IMPL', 'MIN_GAIN'
]

logger = logging.getLogger('pad_mm.ops')

#: environment variable that forces the choice of ``impl='auto'``
ENV_IMPL = 'PAD_MM_IMPL'
#: ``auto`` leaves the reference only for a timed win of at least this
MIN_GAIN = 0.10


def _always(*args: Any) -> bool:
    return True


@dataclass
class Impl:
    """A registered implementation.

    ``fn``: a :class:`~pad_mm.ops.impls.base.PADImpl`. The predicates take
    ``(input, weight, sel, dilations, stride, groups)``: ``supports``, the
    implementation is correct for these inputs; ``prefer``, ``auto`` may
    consider it; ``checked``, ``auto`` also needs its self-check and a
    timing win; ``record_when()``: ``auto`` runs it while it returns True
    (a graph being recorded for export); ``check_context``: a context
    factory, or a sequence of them, entered for part of the self-check
    (e.g. a forced multi-chunk backward; see
    :func:`~pad_mm.ops.selfcheck.self_check`)."""
    fn: Callable[..., Tensor]
    supports: Callable[..., bool] = _always
    prefer: Callable[..., bool] = _always
    checked: bool = False
    record_when: Callable[[], bool] | None = None
    check_context: CheckContext = None


@dataclass
class _State:
    checks: dict = field(default_factory=dict)  # key -> None | error
    results: dict = field(default_factory=dict)  # key -> errors
    timings: dict = field(default_factory=dict)  # key -> (picked, t, t_ref)
    notes: set = field(default_factory=set)  # logged once
    fixed_passed: set = field(default_factory=set)  # (name, fam, dev, dt)


class Dispatcher:
    """Registry, selection, self-checks, timings and fallback of the PAD
    implementations (see the module docstring). ``min_gain``: the timed
    win ``auto`` needs; ``timing_repeats``: timed runs per side."""

    def __init__(self, reference: Callable[..., Tensor],
                 hard_reference: Callable[..., Tensor]) -> None:
        self._impls = {'soft': {'reference': Impl(reference)},
                       'hard': {'reference': Impl(hard_reference)}}
        self._order = {'soft': ['reference'], 'hard': ['reference']}
        self._state = _State()
        self.min_gain = MIN_GAIN
        self.timing_repeats = 5

    # ------------------------------------------------------------ registry

    def register(self, name: str, fn: Callable[..., Tensor],
                 supports: Callable[..., bool] = _always, priority: int = 0,
                 prefer: Callable[..., bool] | None = None,
                 hard: bool = False, checked: bool = False,
                 record_when: Callable[[], bool] | None = None,
                 check_context: CheckContext = None) -> None:
        """Register (or replace, keeping its place) an implementation;
        a new name goes to position ``priority`` of the auto order (0 =
        tried first), never after ``'reference'``. See :class:`Impl`."""
        family = 'hard' if hard else 'soft'
        if name == 'auto':
            raise ValueError("'auto' is not an implementation name")
        self._impls[family][name] = Impl(
            fn, supports, supports if prefer is None else prefer, checked,
            record_when, check_context)
        order = self._order[family]
        if name not in order:
            order.insert(max(0, min(priority, len(order) - 1)), name)

    def entry(self, name: str, hard: bool = False) -> Impl:
        """The registered :class:`Impl` of ``name`` (KeyError if none)."""
        return self._impls['hard' if hard else 'soft'][name]

    def names(self, hard: bool = False) -> list[str]:
        """Registered names (registration order)."""
        return list(self._impls['hard' if hard else 'soft'])

    def auto_order(self, hard: bool = False) -> list[str]:
        """The order ``impl='auto'`` tries (``'reference'`` last)."""
        return list(self._order['hard' if hard else 'soft'])

    def set_auto_order(self, names: list[str], hard: bool = False) -> None:
        """Set the auto order: registered names ending with
        ``'reference'``; names left out are only run when named."""
        family = 'hard' if hard else 'soft'
        unknown = [n for n in names if n not in self._impls[family]]
        if unknown or not names or names[-1] != 'reference':
            raise ValueError(f'auto order must be registered names ending '
                             f"with 'reference', got {names!r} (registered:"
                             f' {self.names(hard)})')
        self._order[family] = list(names)

    @contextlib.contextmanager
    def isolated(self) -> Iterator['Dispatcher']:
        """Within the block, registrations, auto order, checks and timings
        may change freely: all are restored afterwards (tests)."""
        saved = (copy.deepcopy(self._order), {
            k: dict(v) for k, v in self._impls.items()}, self._state,
            self.min_gain, self.timing_repeats)
        self._state = _State()
        try:
            yield self
        finally:
            (self._order, self._impls, self._state, self.min_gain,
             self.timing_repeats) = saved

    # --------------------------------------------------------------- state

    def reset(self) -> None:
        """Forget every self-check, timing and logged note (as a new
        process starts); registrations stay."""
        self._state = _State()

    def report(self) -> dict:
        """The self-checks and timing choices made so far, as plain data
        (``{'checks': [...], 'choices': [...]}``)."""
        checks = [
            dict(impl=key[0], family=key[1], device=key[2],
                 dtype=str(key[3]).replace('torch.', ''),
                 check_key=[str(v) for v in key[4][:8]],
                 passed=err is None,
                 error=None if err is None else repr(err),
                 max_rel_err=self._state.results.get(key, {}))
            for key, err in self._state.checks.items()
        ]
        choices = [
            dict(impl=name, family=family, shape_class=list(map(str, cls)),
                 picked=picked, impl_ms=t * 1e3, reference_ms=t_ref * 1e3)
            for (name, family, cls), (picked, t, t_ref) in
            self._state.timings.items()
        ]
        return dict(checks=checks, choices=choices)

    def check_key(self, name: str, hard: bool, input: Tensor,
                  weight: Tensor, sel: Tensor, dilations: tuple[int, ...],
                  stride: int, groups: int) -> tuple:
        """The self-check cache key of ``name`` for this call."""
        spec = check_spec(input, weight, sel, dilations, stride, groups)
        return (name, 'hard' if hard else 'soft', str(input.device),
                compute_dtype_key(input), spec.key)

    def check_status(self, name: str, input: Tensor, weight: Tensor,
                     sel: Tensor, dilations: tuple[int, ...], stride: int,
                     groups: int, hard: bool = False) -> str | None:
        """``'passed'``, ``'failed'`` or None (not checked) for the check
        key of this call."""
        key = self.check_key(name, hard, input, weight, sel, dilations,
                             stride, groups)
        if key not in self._state.checks:
            return None
        return 'passed' if self._state.checks[key] is None else 'failed'

    def _fail(self, key: tuple, err: BaseException, where: str) -> None:
        if self._state.checks.get(key) is not None:
            return  # warned already
        self._state.checks[key] = err
        name, family, device, dtype = key[:4]
        warnings.warn(
            f'pad_mm: PAD implementation {name!r} ({family}) failed its '
            f"{where} on {device} {dtype}: {err!r}; impl='auto' uses the "
            'reference for such calls for the rest of this process',
            RuntimeWarning, stacklevel=4)

    def _note(self, msg: str) -> None:
        if msg not in self._state.notes:
            self._state.notes.add(msg)
            logger.info(msg)

    # ------------------------------------------------ checks and timings

    def run_self_check(self, fn: Callable[..., Tensor],
                       device: torch.device, dtype: torch.dtype,
                       **kw: Any) -> dict[str, float]:
        """:func:`~pad_mm.ops.selfcheck.self_check` (a seam for tests)."""
        return self_check(fn, device, dtype, **kw)

    def verified(self, name: str, hard: bool, args: tuple) -> bool:
        """Whether ``name`` passed its self-check for the check key of
        ``args`` = (input, weight, sel, dilations, stride, groups),
        running it the first time."""
        entry = self.entry(name, hard)
        input = args[0]
        spec: CheckSpec = check_spec(*args)
        key = (name, 'hard' if hard else 'soft', str(input.device),
               compute_dtype_key(input), spec.key)
        if key in self._state.checks:
            return self._state.checks[key] is None
        if not spec.exact:
            self._note(f'pad_mm: {name} not used for {spec.layout} input, '
                       f'{spec.sel_layout} sel: no self-check case '
                       'reproduces this specialisation')
            return False
        base = key[:4]  # the fixed cases once per device and dtype
        try:
            errors = self.run_self_check(
                entry.fn, input.device, key[3], hard=hard,
                supports=entry.supports, reference=self.entry(
                    'reference', hard).fn, spec=spec,
                context=entry.check_context,
                fixed=base not in self._state.fixed_passed)
        except Exception as err:
            raise_if_unrecoverable(err, name, 'self-check')
            self._fail(key, err, 'self-check')
            return False
        self._state.checks[key] = None
        self._state.results[key] = errors
        self._state.fixed_passed.add(base)
        logger.info('pad_mm: self-check passed: %s (%s) on %s %s, max '
                    'relative error %.3g', name, key[1], key[2], key[3],
                    max(errors.values()) if errors else 0.0)
        return True

    def failed(self, name: str, hard: bool, args: tuple) -> bool:
        """Whether ``name`` failed for the check key of ``args``."""
        key = self.check_key(name, hard, *args)
        return self._state.checks.get(key) is not None

    def time_call(self, name: str, run: Callable[[], Any],
                  device: torch.device) -> float:
        """Median seconds of ``run()`` over :attr:`timing_repeats` runs
        after one warm-up (which compiles): CUDA events on CUDA, else
        ``time.perf_counter``."""
        return time_run(run, device, self.timing_repeats)

    def faster(self, name: str, hard: bool, args: tuple) -> bool:
        """Whether ``name`` measured at least :attr:`min_gain` faster than
        the reference on this shape class (timing both on the first call:
        forward, or forward + backward when gradients are needed)."""
        input, weight, sel, dilations, stride, groups = args
        family = 'hard' if hard else 'soft'
        train = needs_grad(input, weight, sel)
        cls = shape_class(*args, train)
        key = (name, family, cls)
        if key in self._state.timings:
            return self._state.timings[key][0]
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
            t_impl = self.time_call(name, runner(self.entry(name, hard).fn),
                                    input.device)
        except Exception as err:
            raise_if_unrecoverable(err, name, 'timing run')
            self._fail(self.check_key(name, hard, *args), err, 'timing run')
            return False
        t_ref = self.time_call('reference',
                               runner(self.entry('reference', hard).fn),
                               input.device)
        picked = t_impl <= (1.0 - self.min_gain) * t_ref
        self._state.timings[key] = (picked, t_impl, t_ref)
        logger.info('pad_mm: %s %s for %s: %.3f ms vs reference %.3f ms',
                    name, 'picked' if picked else 'not picked', cls,
                    t_impl * 1e3, t_ref * 1e3)
        return picked

    def decided(self, name: str, hard: bool, args: tuple) -> bool:
        """Checked and picked already (no new check or measurement)."""
        key = self.check_key(name, hard, *args)
        if self._state.checks.get(key, 'missing') is not None:
            return False
        cls = shape_class(*args, needs_grad(args[0], args[1], args[2]))
        family = 'hard' if hard else 'soft'
        return self._state.timings.get((name, family, cls), (False, ))[0]

    # ----------------------------------------------------------- selection

    def _env_impl(self, hard: bool) -> str | None:
        value = os.environ.get(ENV_IMPL, '').strip()
        if not value or value == 'auto':
            return None
        if value not in self._impls['hard' if hard else 'soft']:
            raise ValueError(f'{ENV_IMPL} must be one of '
                             f"{['auto'] + self.names(hard)}, got {value!r}")
        return value

    def _auto(self, hard: bool, args: tuple) -> tuple[str, bool]:
        family = 'hard' if hard else 'soft'
        input = args[0]
        for name in self._order[family]:
            entry = self._impls[family][name]
            if not (entry.supports(*args) and entry.prefer(*args)):
                continue
            if not entry.checked:
                return name, False
            if distributed_world() > 1:
                self._note(f'pad_mm: torch.distributed is initialized: '
                           f"impl='auto' keeps the reference instead of "
                           f'timing {name} per rank (set {ENV_IMPL} to '
                           'force one implementation on every rank)')
                continue
            if self.failed(name, hard, args):
                continue
            if capturing(input.device):
                # no checks or timings inside a CUDA graph capture
                if self.decided(name, hard, args):
                    return name, True
                continue
            if self.verified(name, hard, args) and \
                    self.faster(name, hard, args):
                return name, True
        return 'reference', False

    def select_guarded(self, input: Tensor, weight: Tensor, sel: Tensor,
                       dilations: tuple[int, ...], stride: int, groups: int,
                       impl: str = 'auto',
                       hard: bool = False) -> tuple[str, bool]:
        """(name, whether to run it guarded by the reference fallback)."""
        family = 'hard' if hard else 'soft'
        impls = self._impls[family]
        args = (input, weight, sel, dilations, stride, groups)
        source = 'impl'
        if impl == 'auto':
            for name, entry in impls.items():
                if entry.record_when is not None and entry.record_when():
                    return name, False
            if is_tracing():
                # exported graphs (ONNX, jit.trace, torch.export, compile)
                # get the plain-aten reference: no custom autograd
                # Functions, no data-dependent branches
                return 'reference', False
            forced = self._env_impl(hard)
            if forced is None:
                return self._auto(hard, args)
            impl, source = forced, ENV_IMPL
        if impl not in impls:
            raise ValueError(f"impl must be one of {['auto'] + list(impls)}"
                             f', got {impl!r}')
        if not impls[impl].supports(*args):
            raise ValueError(
                f'{source}={impl!r} does not support these inputs (device='
                f'{input.device.type}, dtype={input.dtype}, weight dtype='
                f'{weight.dtype}, stride={stride}, groups={groups}); use '
                "impl='auto' or 'reference'")
        return impl, False

    def select(self, input: Tensor, weight: Tensor, sel: Tensor,
               dilations: tuple[int, ...], stride: int, groups: int,
               impl: str = 'auto', hard: bool = False) -> str:
        """Name of the implementation a call would run (for ``'auto'``
        this may run a checked implementation's one-time self-check and
        shape-class timing)."""
        return self.select_guarded(input, weight, sel, dilations, stride,
                                   groups, impl, hard)[0]

    def run(self, input: Tensor, weight: Tensor, bias: Tensor | None,
            sel: Tensor, dilations: tuple[int, ...], stride: int,
            groups: int, impl: str = 'auto', hard: bool = False) -> Tensor:
        """Select and run (arguments already checked)."""
        name, guarded = self.select_guarded(input, weight, sel, dilations,
                                            stride, groups, impl, hard)
        fn = self.entry(name, hard).fn
        if not guarded:
            return fn(input, weight, bias, sel, dilations, stride, groups)
        key = self.check_key(name, hard, input, weight, sel, dilations,
                             stride, groups)
        call = GuardedCall(name, fn, self.entry('reference', hard).fn,
                           (dilations, stride, groups),
                           lambda err, where: self._fail(key, err, where))
        return call(input, weight, bias, sel,
                    needs_grad(input, weight, bias, sel))


#: the process's dispatcher (``pad_conv2d`` and ``pad_conv2d_hard`` use it)
dispatcher = Dispatcher(pad_conv2d_reference, pad_conv2d_hard_reference)


def dispatch_report() -> dict:
    """:meth:`Dispatcher.report` of :data:`dispatcher`."""
    return dispatcher.report()


def reset_dispatch_state() -> None:
    """:meth:`Dispatcher.reset` of :data:`dispatcher`."""
    dispatcher.reset()
