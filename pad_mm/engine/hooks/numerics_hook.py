"""Fail fast on NaN/inf in a PAD training run (useful with ``--amp``).

Not an upstream workaround: a runtime guard. mmengine 0.10.7 has no hook
that stops a run on a non-finite loss or gradient (its
``CheckInvalidLossHook`` in mmdet checks the loss only, every N
iterations); this one also watches the PAD priors and tells skipped
loss-scaling steps from real overflows.
"""
from __future__ import annotations

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from pad_mm.models.layers import pad_layers

from pad_mm.registry import HOOKS

__all__ = ['PADNumericsHook']


@HOOKS.register_module()
class PADNumericsHook(Hook):
    """Check every training iteration for NaN/inf in the loss, in the hidden
    priors (logits) and dilation probabilities of every PAD layer, and in
    the gradients; raise ``FloatingPointError`` naming the iteration and
    the first offending tensor.

    With float16 loss scaling (``CPUAmpOptimWrapper``/``AmpOptimWrapper``)
    an overflow of the *scaled* gradients is part of the method: the scaler
    skips that step and lowers the scale. Such steps are counted in
    ``skipped_steps`` (and logged as ``train/amp_skipped_steps``) instead of
    raising; ``max_skipped_steps`` bounds them (a run whose gradients are
    really non-finite skips every step).

    Args:
        check_grads: also check the gradients (one ``isfinite`` per
            parameter per iteration, right after its gradient is
            accumulated).
        max_skipped_steps: raise when more loss-scaling steps than this are
            skipped; None for no bound.

    Attributes:
        checked_iters: iterations checked so far.
        skipped_steps: iterations whose step was skipped by loss scaling.
        checked_pad_layers: adaptive PAD layers being watched.
    """

    priority = 'HIGH'

    def __init__(self, check_grads: bool = True,
                 max_skipped_steps: int | None = None) -> None:
        if not isinstance(check_grads, bool):
            raise TypeError('PADNumericsHook.check_grads must be a bool, got '
                            f'{check_grads!r}')
        if max_skipped_steps is not None and (
                isinstance(max_skipped_steps, bool)
                or not isinstance(max_skipped_steps, int)
                or max_skipped_steps < 0):
            raise ValueError('PADNumericsHook.max_skipped_steps must be an '
                             f'int >= 0 or None, got {max_skipped_steps!r}')
        self.check_grads = check_grads
        self.max_skipped_steps = max_skipped_steps
        self.checked_iters = 0
        self.skipped_steps = 0
        self.checked_pad_layers = 0
        self._handles: list = []
        self._bad: list[str] = []
        self._grad_ok: torch.Tensor | None = None
        self._bad_grad: list[str] = []

    def _probe_hook(self, name: str):

        def hook(module, inputs, output):
            logits, probs = inputs
            if not torch.isfinite(logits).all():
                self._bad.append(f'hidden priors (logits) of PAD layer '
                                 f'{name!r}, dtype {logits.dtype}')
            if not torch.isfinite(probs).all():
                self._bad.append(f'dilation probabilities of PAD layer '
                                 f'{name!r}, dtype {probs.dtype}')

        return hook

    def _grad_hook(self, name: str):

        def hook(param):
            if param.grad is not None and not bool(
                    torch.isfinite(param.grad).all()):
                self._bad_grad.append(name)

        return hook

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        for name, m in pad_layers(model):
            self._handles.append(
                m.probe.register_forward_hook(self._probe_hook(name)))
            self.checked_pad_layers += 1
        if self.check_grads:
            for name, p in model.named_parameters():
                if p.requires_grad:
                    self._handles.append(
                        p.register_post_accumulate_grad_hook(
                            self._grad_hook(name)))

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self._bad.clear()
        self._bad_grad.clear()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        where = f'PADNumericsHook: iteration {runner.iter + 1}'
        # in forward order: the first PAD layer that went wrong, then loss
        if self._bad:
            raise FloatingPointError(f'{where}: non-finite {self._bad[0]}')
        for key, value in (outputs or {}).items():
            if isinstance(value, torch.Tensor) and value.is_floating_point() \
                    and not torch.isfinite(value).all():
                raise FloatingPointError(f'{where}: {key} = {value} is not '
                                         'finite')
        if self._bad_grad:
            wrapper = runner.optim_wrapper
            if getattr(wrapper, 'last_step_skipped', False) or (
                    _scaler_backed_off(wrapper)):
                self.skipped_steps += 1
                if self.max_skipped_steps is not None and \
                        self.skipped_steps > self.max_skipped_steps:
                    raise FloatingPointError(
                        f'{where}: {self.skipped_steps} steps skipped by loss '
                        f'scaling (max_skipped_steps='
                        f'{self.max_skipped_steps}); first non-finite grad '
                        f'{self._bad_grad[0]!r}')
            else:
                raise FloatingPointError(
                    f'{where}: non-finite gradient of {self._bad_grad[0]!r} '
                    f'({len(self._bad_grad)} parameters)')
        self.checked_iters += 1
        runner.message_hub.update_scalar('train/amp_skipped_steps',
                                         self.skipped_steps)

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def _scaler_backed_off(wrapper) -> bool:
    """mmengine's ``AmpOptimWrapper`` (GPU): a dynamic scaler lowers its
    scale exactly when it skipped the step."""
    scaler = getattr(wrapper, 'loss_scaler', None)
    if scaler is None or not scaler.is_enabled():
        return False
    growth = scaler.get_growth_tracker()
    return growth == 0 and scaler.get_scale() < scaler.get_init_scale()
