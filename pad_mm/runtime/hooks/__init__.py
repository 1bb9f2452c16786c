"""Hooks that are runtime plumbing rather than PAD: resumable RNG state
and a NaN/inf guard."""
from .numerics_hook import PADNumericsHook
from .rng_hook import RNGStateHook, get_rng_state, set_rng_state

__all__ = ['PADNumericsHook', 'RNGStateHook', 'get_rng_state',
           'set_rng_state']
