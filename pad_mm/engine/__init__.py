"""Hooks (:mod:`pad_mm.engine.hooks`): the PAD ones and the training
guards. Upstream workarounds live in :mod:`pad_mm.runtime`."""
from .hooks import (TAU_SCHEDULES, PADDilationMapHook, PADDilationStatsHook,
                    PADEvalNumericsHook, PADNumericsHook, PADTauHook,
                    RNGStateHook, get_rng_state, set_rng_state, set_tau,
                    tau_at)

__all__ = [
    'PADTauHook', 'tau_at', 'set_tau', 'TAU_SCHEDULES',
    'PADDilationStatsHook', 'PADDilationMapHook', 'PADNumericsHook',
    'PADEvalNumericsHook', 'RNGStateHook', 'get_rng_state', 'set_rng_state'
]
