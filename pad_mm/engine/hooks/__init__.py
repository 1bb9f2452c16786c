"""The PAD hooks: tau annealing, dilation statistics and dilation maps."""
from .dilation_map_hook import PADDilationMapHook
from .dilation_stats_hook import PADDilationStatsHook
from .tau_hook import TAU_SCHEDULES, PADTauHook, set_tau, tau_at

__all__ = [
    'PADTauHook', 'tau_at', 'set_tau', 'TAU_SCHEDULES',
    'PADDilationStatsHook', 'PADDilationMapHook'
]
