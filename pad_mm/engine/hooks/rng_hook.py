"""Save the random-number-generator state in checkpoints and restore it on
resume, so an interrupted and resumed run continues the same random stream
(Gumbel noise, dropout, data augmentation) as an uninterrupted one.

mmengine 0.10.7 saves model, optimizer, scheduler and message-hub state but
not the RNGs: a resumed run re-seeds them, so its Gumbel samples differ
from the uninterrupted run's. Upstream: open-mmlab/mmdetection#7508 (the
seed is stored in the checkpoint meta but the RNG state is not restored);
no mmengine version up to 0.10.7 restores it.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook

from pad_mm.registry import HOOKS

__all__ = ['RNGStateHook', 'get_rng_state', 'set_rng_state']

RNG_STATE_KEY = 'rng_state'


def get_rng_state() -> dict:
    """States of Python's ``random``, numpy's global RNG, torch's CPU RNG
    and (when present) every CUDA device's RNG."""
    state = dict(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`get_rng_state`."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'].cpu())
    if 'cuda' in state and torch.cuda.is_available():
        cuda = state['cuda']
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


class _RestoreBeforeFetch:
    """Iterator proxy: after ``skip`` calls of ``next`` (the data already
    trained on, which ``IterBasedTrainLoop`` replays after a resume) it
    restores the RNG state, then fetches the next batch. From then on it
    only forwards."""

    def __init__(self, iterator, skip: int, state: dict) -> None:
        self._iterator = iterator
        self._skip = skip
        self._state: dict | None = state

    def __iter__(self):
        return self

    def __next__(self):
        if self._state is not None:
            if self._skip == 0:
                set_rng_state(self._state)
                self._state = None
            else:
                self._skip -= 1
        return next(self._iterator)

    def __getattr__(self, name: str):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Store the RNG state in every checkpoint (key ``'rng_state'``) and
    restore it when training resumes from one.

    The state is captured when the checkpoint is written (after the
    iteration) and restored exactly where the uninterrupted run stood: for
    iteration-based loops just before the first new batch is fetched (after
    mmengine replays the data already trained on), for epoch-based loops
    before the next epoch. Validation is made RNG-neutral (the state is
    saved before and restored after it), so the training stream does not
    depend on when validation runs, and a resumed run, which does not
    repeat the validation of its checkpoint's iteration, stays identical.

    Bit-identical continuation needs a deterministic run (fixed seed, CPU or
    ``deterministic=True``) and ``num_workers=0``: the RNGs of dataloader
    worker processes are not captured. In a distributed run the checkpoint
    holds rank 0's state; it is restored on every rank when all ranks share
    a seed (mmengine's default ``diff_rank_seed=False``), else on rank 0
    only. ``tools/train.py`` adds this hook to every run.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._pending: dict | None = None
        self._val_state: dict | None = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[RNG_STATE_KEY] = get_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get(RNG_STATE_KEY)

    def before_train(self, runner) -> None:
        state, self._pending = self._pending, None
        loop = runner.train_loop
        if loop.iter == 0 and loop.epoch == 0:
            return  # not a resume (fresh run or load_from)
        if state is None:
            runner.logger.warning(
                'RNGStateHook: the checkpoint has no RNG state (written '
                'without this hook); the resumed run is re-seeded, so its '
                'random draws differ from an uninterrupted run')
            return
        rank, world_size = get_dist_info()
        diff_rank_seed = runner._randomness_cfg.get('diff_rank_seed', False)
        if world_size > 1 and diff_rank_seed and rank != 0:
            return
        if hasattr(loop, 'dataloader_iterator'):  # IterBasedTrainLoop
            loop.dataloader_iterator = _RestoreBeforeFetch(
                loop.dataloader_iterator, loop.iter, state)
        else:
            set_rng_state(state)
        runner.logger.info('RNGStateHook: RNG state restored from the '
                           'checkpoint')

    def before_val(self, runner) -> None:
        self._val_state = get_rng_state()

    def after_val(self, runner) -> None:
        if self._val_state is not None:
            set_rng_state(self._val_state)
            self._val_state = None
