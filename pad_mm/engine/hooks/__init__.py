"""pad_mm's hooks: the PAD ones (tau annealing, dilation statistics and
maps) and the training guards (resumable RNG state, NaN/inf guard)."""
from .dilation_map_hook import PADDilationMapHook
from .dilation_stats_hook import PADDilationStatsHook
from .eval_numerics_hook import PADEvalNumericsHook
from .numerics_hook import PADNumericsHook
from .rng_hook import RNGStateHook, get_rng_state, set_rng_state
from .tau_hook import TAU_SCHEDULES, PADTauHook, set_tau, tau_at

__all__ = [
    'PADTauHook', 'tau_at', 'set_tau', 'TAU_SCHEDULES',
    'PADDilationStatsHook', 'PADDilationMapHook', 'PADNumericsHook',
    'PADEvalNumericsHook',
    'RNGStateHook', 'get_rng_state', 'set_rng_state'
]
