"""Anneal the Gumbel-Softmax temperature tau of every PAD layer."""
from __future__ import annotations

import math

from mmengine.hooks import Hook

from pad_mm.models import PADConfigError
from pad_mm.models.utils import set_tau
from pad_mm.ops import check_tau
from pad_mm.registry import HOOKS

__all__ = ['PADTauHook', 'tau_at', 'set_tau', 'TAU_SCHEDULES']

TAU_SCHEDULES = ('constant', 'exp', 'cosine')


def tau_at(iteration: int, schedule: str, tau_start: float, tau_end: float,
           anneal_iters: int) -> float:
    """tau at a (0-based) iteration.

    ``constant``: tau_start.
    ``exp``:      tau_start * (tau_end / tau_start) ** (t / T).
    ``cosine``:   tau_end + (tau_start - tau_end) * (1 + cos(pi t / T)) / 2.
    with ``t = min(iteration, T)`` and ``T = anneal_iters``; after T the
    value stays at tau_end.
    """
    if schedule == 'constant':
        return tau_start
    t = min(max(iteration, 0), anneal_iters) / anneal_iters
    if schedule == 'exp':
        return tau_start * (tau_end / tau_start)**t
    if schedule == 'cosine':
        return tau_end + (tau_start - tau_end) * (1 + math.cos(math.pi * t)) / 2
    raise ValueError(f'schedule must be one of {list(TAU_SCHEDULES)}, got '
                     f'{schedule!r}')


@HOOKS.register_module()
class PADTauHook(Hook):
    """Set tau of all PAD layers before every training iteration and log it
    as ``tau``.

    Bad arguments raise :class:`~pad_mm.models.PADConfigError` naming the
    argument.

    Args:
        schedule: ``'constant'``, ``'exp'`` or ``'cosine'`` (see
            :func:`tau_at`).
        tau_start: tau at iteration 0 (> 0).
        tau_end: tau reached at ``anneal_iters`` (> 0); unused by
            ``'constant'``.
        anneal_iters: iterations over which tau goes from start to end; by
            default the run's ``max_iters``.

    tau is a function of the iteration only, so a resumed run continues
    the same schedule.
    """

    priority = 'NORMAL'

    def __init__(self,
                 schedule: str = 'exp',
                 tau_start: float = 1.0,
                 tau_end: float = 0.1,
                 anneal_iters: int | None = None) -> None:
        if schedule not in TAU_SCHEDULES:
            raise PADConfigError('schedule', schedule,
                                 f'one of {list(TAU_SCHEDULES)}')
        self.schedule = schedule
        for name, tau in (('tau_start', tau_start), ('tau_end', tau_end)):
            try:
                check_tau(tau, name)
            except (TypeError, ValueError):
                raise PADConfigError(name, tau,
                                     'a finite number > 0') from None
        self.tau_start, self.tau_end = float(tau_start), float(tau_end)
        if anneal_iters is not None and (
                isinstance(anneal_iters, bool)
                or not isinstance(anneal_iters, int) or anneal_iters < 1):
            raise PADConfigError('anneal_iters', anneal_iters,
                                 'a positive int or None')
        self.anneal_iters = anneal_iters

    def _tau(self, runner, iteration: int) -> float:
        total = self.anneal_iters or max(int(runner.max_iters), 1)
        return tau_at(iteration, self.schedule, self.tau_start, self.tau_end,
                      total)

    def before_train(self, runner) -> None:
        n = set_tau(runner.model, self._tau(runner, runner.iter))
        if n == 0:
            runner.logger.warning('PADTauHook: the model has no adaptive '
                                  'PAD layer; tau is not used')

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        tau = self._tau(runner, runner.iter)
        set_tau(runner.model, tau)
        runner.message_hub.update_scalar('train/tau', tau)
