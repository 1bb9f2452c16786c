from .tau_hook import TAU_SCHEDULES, PADTauHook, set_tau, tau_at

__all__ = ['PADTauHook', 'tau_at', 'set_tau', 'TAU_SCHEDULES']
from .numerics_hook import PADNumericsHook  # noqa: E402,F401
from .rng_hook import RNGStateHook, get_rng_state, set_rng_state  # noqa: E402,F401,E501
from .dilation_stats_hook import PADDilationStatsHook  # noqa: E402,F401
from .dilation_map_hook import PADDilationMapHook  # noqa: E402,F401
