from .tau_hook import TAU_SCHEDULES, PADTauHook, set_tau, tau_at

__all__ = ['PADTauHook', 'tau_at', 'set_tau', 'TAU_SCHEDULES']
