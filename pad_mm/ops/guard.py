"""Running a checked implementation with the reference as its fallback.

Which failures are fallen back from (:func:`error_kind`):

* ``'oom'`` (``torch.OutOfMemoryError``, or a message saying "out of
  memory"): raised as it is. The implementation is not marked failed
  (the next, smaller batch may fit) and nothing is recomputed through the
  reference, which needs more memory than the fused kernels.
* ``'fatal'`` (sticky CUDA errors: illegal address, misaligned address,
  illegal instruction, unspecified launch failure, device-side assert,
  uncorrectable ECC, hardware stack error): the CUDA context is lost and
  every later CUDA call of the process fails, so there is no fallback.
  Raised as :class:`FatalDeviceError` naming the implementation and
  ``PAD_MM_IMPL=reference`` to rule it out in the restarted run.
* ``'recoverable'`` (anything else: a compile error, out of shared
  memory, no kernel image, a wrong argument): the implementation is
  marked failed for its check key, with one warning, and the call is
  recomputed through the reference (a failed backward recomputes the
  reference's forward and backward on the saved inputs).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .impls.base import first_order_only

__all__ = ['error_kind', 'FatalDeviceError', 'raise_if_unrecoverable',
           'GuardedCall']

#: messages of the sticky CUDA errors (cudaErrorIllegalAddress 700,
#: Assert 710, HardwareStackError 714, IllegalInstruction 715,
#: MisalignedAddress 716, InvalidPc 718, LaunchFailure 719,
#: ECCUncorrectable 214)
FATAL_MESSAGES = (
    'illegal memory access', 'illegal address', 'misaligned address',
    'illegal instruction', 'unspecified launch failure',
    'device-side assert', 'uncorrectable ecc', 'hardware stack error',
    'invalid program counter')


class FatalDeviceError(RuntimeError):
    """A sticky device error in a PAD implementation: the process must
    restart."""


def error_kind(err: BaseException) -> str:
    """``'oom'``, ``'fatal'`` or ``'recoverable'`` (see the module
    docstring)."""
    msg = str(err).lower()
    if isinstance(err, torch.OutOfMemoryError) or 'out of memory' in msg:
        return 'oom'
    if any(m in msg for m in FATAL_MESSAGES):
        return 'fatal'
    return 'recoverable'


def raise_if_unrecoverable(err: BaseException, name: str,
                           where: str) -> None:
    """Re-raise an OOM as it is and a fatal error as
    :class:`FatalDeviceError`; return for a recoverable one."""
    kind = error_kind(err)
    if kind == 'oom':
        raise err
    if kind == 'fatal':
        raise FatalDeviceError(
            f'pad_mm: PAD implementation {name!r} hit a sticky device error '
            f'in its {where}: {err}. The CUDA context of this process is '
            'lost (no fallback is possible); restart it, with '
            "PAD_MM_IMPL=reference to rule the implementation out, and "
            'report the error') from err


class _Guarded(torch.autograd.Function):
    """Runs a checked implementation; recomputes through the reference if
    its forward or backward raises a recoverable error."""

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
    @first_order_only  # no graph of the gradients: no double backward
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
            raise_if_unrecoverable(err, call.name, 'backward')
            call.fail(err, 'backward')
            del out
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
    """One call of a checked implementation with its reference fallback;
    ``fail(err, where)`` marks the implementation failed."""

    def __init__(self, name: str, fn: Callable[..., Tensor],
                 reference: Callable[..., Tensor], rest: tuple,
                 fail: Callable[[BaseException, str], None]) -> None:
        self.name, self.fn, self.reference = name, fn, reference
        self.rest, self.fail = rest, fail

    def run(self, fn: Callable[..., Tensor], args: list,
            where: str) -> Tensor:
        try:
            return fn(*args, *self.rest)
        except Exception as err:
            raise_if_unrecoverable(err, self.name, where)
            self.fail(err, where)
            return self.reference(*args, *self.rest)

    def __call__(self, input: Tensor, weight: Tensor, bias: Tensor | None,
                 sel: Tensor, needs_grad: bool) -> Tensor:
        if needs_grad:
            return _Guarded.apply(self, input, weight, bias, sel)
        return self.run(self.fn, [input, weight, bias, sel], 'forward')
