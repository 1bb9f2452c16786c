"""Mixed-precision training on the CPU.

mmengine 0.10.7's ``AmpOptimWrapper`` asserts that a GPU (or NPU/MLU/MUSA)
is present and its ``autocast`` only allows bfloat16 on the CPU, so
``--amp`` cannot run on a CPU-only machine. :class:`CPUAmpOptimWrapper` is
the same wrapper for the CPU: ``torch.autocast('cpu', dtype)`` around the
forward pass (float16 or bfloat16) and, for float16, loss scaling with
``torch.amp.GradScaler('cpu')``. ``pad_mm.apis.runner.apply_amp``
selects it when CUDA is not available, so ``--amp`` works everywhere.

Upstream: open-mmlab/mmpretrain#1556 ("``AmpOptimizerWrapper`` is only
available training on gpu, npu or mlu"); still so in mmengine 0.10.7, no
fixed version.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper

from pad_mm.registry import OPTIM_WRAPPERS

__all__ = ['CPUAmpOptimWrapper', 'AMP_DTYPES']

AMP_DTYPES = ('float16', 'bfloat16')


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``AmpOptimWrapper`` for CPU training.

    Args:
        dtype: autocast dtype, ``'float16'`` or ``'bfloat16'``.
        loss_scale: ``'dynamic'`` (``GradScaler`` defaults: initial scale
            2**16, halved on overflow, doubled after 2000 good steps), a
            float > 0 (static scale), a dict of ``GradScaler`` arguments, or
            None (no scaling). Defaults to ``'dynamic'`` for float16 and
            None for bfloat16 (bfloat16 has the exponent range of float32).
        **kwargs: as :class:`mmengine.optim.OptimWrapper`.

    Attributes:
        skipped_steps: optimizer steps skipped because the scaled gradients
            overflowed (float16 loss scaling); such a step leaves the
            parameters unchanged and lowers the scale.
        last_step_skipped: whether the latest ``step()`` was skipped.
    """

    def __init__(self,
                 dtype: str = 'float16',
                 loss_scale: str | float | dict | None = 'default',
                 **kwargs) -> None:
        if dtype not in AMP_DTYPES:
            raise ValueError(f'CPUAmpOptimWrapper.dtype must be one of '
                             f'{list(AMP_DTYPES)}, got {dtype!r}')
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype)
        if loss_scale == 'default':
            loss_scale = 'dynamic' if dtype == 'float16' else None
        self._scale_update_param = None
        if loss_scale is None:
            self.loss_scaler = torch.amp.GradScaler('cpu', enabled=False)
        elif loss_scale == 'dynamic':
            self.loss_scaler = torch.amp.GradScaler('cpu')
        elif isinstance(loss_scale, (int, float)) and not isinstance(
                loss_scale, bool) and loss_scale > 0:
            self._scale_update_param = float(loss_scale)
            self.loss_scaler = torch.amp.GradScaler(
                'cpu', init_scale=float(loss_scale))
        elif isinstance(loss_scale, dict):
            self.loss_scaler = torch.amp.GradScaler('cpu', **loss_scale)
        else:
            raise ValueError(
                "CPUAmpOptimWrapper.loss_scale must be 'dynamic', a number "
                f'> 0, a dict of GradScaler arguments or None, got '
                f'{loss_scale!r}')
        self.skipped_steps = 0
        self.last_step_skipped = False

    @property
    def scaling(self) -> bool:
        """Whether the loss is scaled (float16 with a loss scale)."""
        return self.loss_scaler.is_enabled()

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        self.loss_scaler.scale(loss).backward(**kwargs)
        self._inner_count += 1

    def _grads_finite(self) -> bool:
        finite = torch.ones((), dtype=torch.bool)
        for group in self.optimizer.param_groups:
            for p in group['params']:
                if p.grad is not None:
                    finite &= torch.isfinite(p.grad).all()
        return bool(finite)

    def step(self, **kwargs) -> None:
        if self.scaling:
            # unscale first: the clip and the overflow check see true grads
            self.loss_scaler.unscale_(self.optimizer)
            self.last_step_skipped = not self._grads_finite()
            self.skipped_steps += int(self.last_step_skipped)
        if self.clip_grad_kwargs:
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update(self._scale_update_param)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state['loss_scaler'] = self.loss_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        scaler = state_dict.pop('loss_scaler', None)
        if scaler:
            self.loss_scaler.load_state_dict(scaler)
        if 'base_param_settings' in state_dict:
            self.base_param_settings = state_dict.pop('base_param_settings')
        self.optimizer.load_state_dict(state_dict)

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Gradient-accumulation context of ``OptimWrapper`` plus CPU
        autocast."""
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=self.cast_dtype):
            yield
