"""Workaround ``pad-prior-keys``: one line, not a key dump, for the PAD
prior parameters a vanilla checkpoint lacks.

Not an upstream bug but a usability fix for PAD: mmengine's
``load_state_dict`` (``mmengine/runner/checkpoint.py``) lists every missing
key in one long warning. Loading a vanilla checkpoint into a PAD model is
expected to miss exactly the PAD prior parameters: those keep their
initialisation and are reported in one line; any other mismatch is still
reported by mmengine as before. ``strict=True`` is unchanged.
"""
from __future__ import annotations

import logging
from collections import OrderedDict

from pad_mm.models.layers import pad_layers

__all__ = ['pad_prior_keys', 'apply']


def pad_prior_keys(module) -> list[str]:
    """State-dict keys of the PAD prior parameters of ``module`` (model
    wrappers are unwrapped), in module order."""
    keys = []
    for name, m in pad_layers(module):
        prefix = f'{name}.prior.' if name else 'prior.'
        keys += [prefix + n for n, _ in m.prior.named_parameters()]
    return keys


def apply() -> None:
    """Wrap mmengine's ``load_state_dict`` (idempotent)."""
    import mmengine.runner as runner_pkg
    import mmengine.runner.checkpoint as ckpt
    from mmengine.dist import get_dist_info
    from mmengine.logging import print_log
    from mmengine.model import is_model_wrapper
    original = ckpt.load_state_dict
    if getattr(original, '_pad_mm_patched', False):
        return

    def load_state_dict(module, state_dict, strict=False, logger=None):
        if strict:
            return original(module, state_dict, strict, logger)
        missing = [k for k in pad_prior_keys(module) if k not in state_dict]
        if not missing:
            return original(module, state_dict, strict, logger)
        own = (module.module if is_model_wrapper(module) else
               module).state_dict()
        filled = OrderedDict(state_dict)
        metadata = getattr(state_dict, '_metadata', None)
        if metadata is not None:
            filled._metadata = metadata
        for key in missing:  # load as themselves: left unchanged
            filled[key] = own[key]
        layers = list(dict.fromkeys(k.rsplit('.prior.', 1)[0]
                                    for k in missing))
        for layer in layers:  # and so do their tau and dilation options
            for key in (f'{layer}.pad_tau', f'{layer}.pad_dilations'):
                if key in own and key not in state_dict:
                    filled[key] = own[key]
        result = original(module, filled, strict, logger)
        if get_dist_info()[0] == 0:
            print_log(
                f'PAD: the checkpoint has no PAD prior parameters for '
                f'{len(layers)} PAD layer(s) ({len(missing)} tensors '
                f'*.prior.*, first: {missing[0]}); they keep their '
                'initialisation (native dilation favoured), as expected when '
                'loading a vanilla checkpoint into a PAD model',
                logger=logger if logger is not None else 'current',
                level=logging.WARNING)
        return result

    load_state_dict._pad_mm_patched = True
    load_state_dict.__wrapped__ = original
    ckpt.load_state_dict = load_state_dict
    runner_pkg.load_state_dict = load_state_dict
