"""A test or an inference must run the model its checkpoint was trained as:
a PAD checkpoint with the vanilla config silently drops the priors (and
runs the vanilla model), a vanilla checkpoint with a PAD config runs the
PAD layers at their initial priors (the vanilla model again). Both are
refused with one line naming both sides."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from .validate import PADConfigError, PADConfigFileError

__all__ = ['pad_prior_layers', 'config_is_pad', 'check_pad_match',
           'checkpoint_state']

#: config ``type`` values that place PAD layers
PAD_TYPES = ('PADBackbone', 'PADConv', 'pad_mm.PADBackbone',
             'pad_mm.PADConv')


def pad_prior_layers(keys: Iterable[str]) -> list[str]:
    """The PAD layers a state dict holds priors for (``'...conv1'`` of
    ``'...conv1.prior.input_weight'``), sorted; a leading ``module.`` (a
    wrapper's) is dropped."""
    layers = set()
    for key in keys:
        if '.prior.' in key or key.startswith('prior.'):
            name = key.split('prior.', 1)[0].rstrip('.')
            layers.add(name[7:] if name.startswith('module.') else name)
    return sorted(layers)


def config_is_pad(node) -> bool:
    """Whether a config (any part of it) places PAD layers."""
    if isinstance(node, Mapping):
        if node.get('type') in PAD_TYPES:
            return True
        return any(config_is_pad(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return any(config_is_pad(v) for v in node)
    return False


def checkpoint_state(path: str) -> Mapping:
    """The state dict of a checkpoint file (memory-mapped where the format
    allows, so its tensors are not read)."""
    try:
        try:
            ckpt = torch.load(path, map_location='cpu', weights_only=False,
                              mmap=True)
        except RuntimeError:  # an old (non-zip) format cannot be mapped
            ckpt = torch.load(path, map_location='cpu', weights_only=False)
    except Exception as exc:  # noqa: BLE001  (any unreadable file)
        raise PADConfigFileError('checkpoint', path, 'a checkpoint file '
                                 'torch.load can read',
                                 f'{type(exc).__name__}: {exc}') from None
    if isinstance(ckpt, Mapping) and isinstance(ckpt.get('state_dict'),
                                                Mapping):
        return ckpt['state_dict']
    return ckpt if isinstance(ckpt, Mapping) else {}


def check_pad_match(model_is_pad: bool, model_layers: Iterable[str],
                    state: Mapping, config: str, checkpoint: str) -> None:
    """Refuse a PAD/vanilla mismatch of a model and its checkpoint.

    Args:
        model_is_pad: the config builds PAD layers.
        model_layers: their names, if known (for the message).
        state: the checkpoint's state dict (keys only are read).
        config, checkpoint: names for the message.

    Raises:
        PADConfigError: naming ``checkpoint``, its kind and the config's.
    """
    ckpt_layers = pad_prior_layers(state.keys())
    model_layers = list(model_layers)
    if ckpt_layers and not model_is_pad:
        raise PADConfigError(
            'checkpoint', checkpoint, "a checkpoint of the config's model",
            f'it is a PAD model ({len(ckpt_layers)} PAD layers, e.g. '
            f'{ckpt_layers[0]}) but the config {config} builds a vanilla '
            'model: its priors would be dropped and the vanilla model run; '
            'use the PAD config it was trained with')
    if model_is_pad and not ckpt_layers:
        shown = f', e.g. {model_layers[0]}' if model_layers else ''
        raise PADConfigError(
            'checkpoint', checkpoint, "a checkpoint of the config's model",
            f'it is a vanilla model (no PAD priors) but the config {config} '
            f'builds a PAD model ({len(model_layers) or "some"} PAD layers'
            f'{shown}): the PAD layers would run at their initial priors, '
            'i.e. the vanilla model; use the vanilla config, or a PAD '
            'checkpoint')
