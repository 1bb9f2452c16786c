"""The PAD hooks (tau annealing, dilation statistics and maps). Generic
runtime fixes live in :mod:`pad_mm.runtime`."""
from .hooks import (TAU_SCHEDULES, PADDilationMapHook, PADDilationStatsHook,
                    PADTauHook, set_tau, tau_at)

__all__ = [
    'PADTauHook', 'tau_at', 'set_tau', 'TAU_SCHEDULES',
    'PADDilationStatsHook', 'PADDilationMapHook'
]
