"""Runner-side pieces: hooks and fixes for mmengine on current torch."""
from .compat import apply_compat_patches
from .hooks import TAU_SCHEDULES, PADTauHook, set_tau, tau_at

apply_compat_patches()

__all__ = [
    'apply_compat_patches', 'PADTauHook', 'tau_at', 'set_tau',
    'TAU_SCHEDULES'
]
