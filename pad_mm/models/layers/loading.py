"""How an adaptive :class:`~pad_mm.models.PADConv2d` loads a checkpoint.

* The layer's absolute dilation options (buffer ``pad_dilations``) are
  its own and never overwritten. A checkpoint whose priors were trained
  for other options is refused (:class:`PADCheckpointMismatchError`), or,
  with ``reinit_priors_on_mismatch=True``, loads everything but those
  priors, which are re-initialised (one log line).
* The trained tau (``pad_tau``) is loaded and checked.
* An older checkpoint without ``pad_tau`` / ``pad_dilations`` loads with
  a one-line note per load (the configured values stand).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmengine.logging import print_log

from pad_mm.ops import check_tau

from .prior import note_once

__all__ = ['PAD_BUFFERS', 'PADCheckpointMismatchError', 'LoadPlan',
           'plan_load', 'finish_load']

# persistent buffers of an adaptive PADConv2d (tau, absolute options)
PAD_BUFFERS = ('pad_tau', 'pad_dilations')


class PADCheckpointMismatchError(ValueError):
    """A checkpoint's PAD dilation options differ from the layer's."""


@dataclass
class LoadPlan:
    """What :func:`plan_load` found in the checkpoint for one layer."""
    name: str
    prefix: str
    state: dict[str, Any]  # the layer's keys, without pad_dilations
    has_prior: bool
    ckpt_dilations: tuple[int, ...] | None
    tau: Any  # the checkpoint's pad_tau, or None


def plan_load(layer, state_dict: dict, prefix: str) -> LoadPlan:
    """Check the checkpoint's options against the layer's (refuse, or mark
    the priors for re-initialisation) before the keys are loaded."""
    name = prefix[:-1] or type(layer).__name__
    key_d = prefix + 'pad_dilations'
    own_d = layer.abs_dilations
    has_prior = (prefix + 'prior.input_weight') in state_dict
    ckpt_d = state_dict.get(key_d)
    if ckpt_d is not None:
        ckpt_d = tuple(int(d) for d in ckpt_d.reshape(-1).tolist())
        if ckpt_d != own_d and has_prior:
            if not layer.reinit_priors_on_mismatch:
                raise PADCheckpointMismatchError(
                    f'PAD layer {name!r}: the checkpoint\'s priors were '
                    f'trained for dilation options {ckpt_d}, this '
                    f'layer has {own_d} (absolute); refusing to load '
                    'them with another meaning. Set pad_cfg=dict(..., '
                    'reinit_priors_on_mismatch=True) to keep the conv '
                    'weights and re-initialise these priors, or use '
                    f'dilations that give {ckpt_d}')
            layer.prior.reinit_on_next_load()
            print_log(f'PAD layer {name!r}: checkpoint dilation options '
                      f'{ckpt_d} differ from the layer\'s {own_d}; '
                      're-initialised its priors '
                      '(reinit_priors_on_mismatch=True)',
                      logger='current')
    # pad_dilations is the layer's own (never overwritten)
    state = {k: v for k, v in state_dict.items()
             if k.startswith(prefix) and k != key_d}
    return LoadPlan(name, prefix, state, has_prior, ckpt_d,
                    state_dict.get(prefix + 'pad_tau'))


def finish_load(layer, plan: LoadPlan, missing_keys: list) -> None:
    """After the keys are loaded: the PAD buffers are never reported
    missing, the trained tau takes effect, older checkpoints get a note."""
    key_t = plan.prefix + 'pad_tau'
    for key in (plan.prefix + 'pad_dilations', key_t):
        if key in missing_keys:
            missing_keys.remove(key)
    if plan.tau is not None:
        layer.tau = check_tau(float(plan.tau), f'{key_t} in the checkpoint')
    elif plan.has_prior:
        note_once(missing_keys, 'tau',
                  f'PAD checkpoint without tau (written before tau '
                  f'was saved): {plan.name!r} and the other PAD layers keep '
                  f'tau={layer.tau:g} from the config')
    if plan.ckpt_dilations is None and plan.has_prior:
        note_once(missing_keys, 'dilations',
                  'PAD checkpoint without dilation options (written '
                  f'before they were saved): assuming {plan.name!r} and the '
                  'other PAD layers were trained with their configured '
                  f'options, e.g. {layer.abs_dilations}')
