"""Capture what a model computes during one forward pass: outputs of named
modules, the output of one layer (stopping the forward there) and the
dilation maps of every PAD layer."""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from pad_mm.apis.inference import forward_tensor, prepare_sample
from pad_mm.evaluation.recorder import (chosen_dilation, expected_dilation,
                                        recording, summarize_dilation_stats)
from pad_mm.registry import FUNCTIONS

from .figures import render_dilation_maps

__all__ = [
    'dilation_panels', 'capture_outputs', 'layer_output',
    'dilation_map_image'
]


def dilation_panels(model: nn.Module,
                    inputs: Tensor) -> tuple[list[dict], dict]:
    """Forward ``inputs`` [1, 3, H, W] once and return, per PAD layer in
    call order, ``dict(name, dilations, expected [h, w], chosen [h, w],
    logits [D, h, w], probs [D, h, w])`` (numpy), plus the pooled
    statistics of :func:`summarize_dilation_stats`."""
    with recording(model, keep_maps=True) as rec, torch.no_grad():
        forward_tensor(model, inputs)
    stats = summarize_dilation_stats(rec.pop_sums())
    panels = []
    for name, (logits, probs) in rec.maps().items():
        dil = rec.records[name].dilations
        panels.append(dict(
            name=name, dilations=list(dil),
            expected=expected_dilation(
                torch.softmax(logits.double(), 1), dil)[0].numpy(),
            chosen=chosen_dilation(probs, dil)[0].numpy(),
            logits=logits[0].numpy(), probs=probs[0].numpy()))
    return panels, stats


@contextmanager
def capture_outputs(model: nn.Module, names: Sequence[str]):
    """Collect the outputs of the named submodules during a forward:
    ``with capture_outputs(model, ['backbone.layer4']) as out: ...``,
    then ``out['backbone.layer4']`` (the last call's output)."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        examples = [n for n, m in model.named_modules()
                    if isinstance(m, nn.Conv2d)][:6]
        raise ValueError(f'layer {missing[0]!r} is not a module of '
                         f'{type(model).__name__}; module names look like '
                         f'{examples}')
    out: dict[str, Tensor] = {}
    handles = []
    for n in names:
        def hook(m, args, output, n=n):
            out[n] = output[0] if isinstance(output, (tuple, list)) \
                else output
        handles.append(modules[n].register_forward_hook(hook))
    try:
        yield out
    finally:
        for h in handles:
            h.remove()


class _StopForward(Exception):
    pass


def layer_output(model: nn.Module, layer: str, inputs: Tensor) -> Tensor:
    """Output of module ``layer`` for ``inputs``, stopping the forward
    (``mode='tensor'``) as soon as that module has run."""
    modules = dict(model.named_modules())
    if layer not in modules:
        with capture_outputs(model, [layer]):
            pass  # raises the ValueError naming the layer
    out: list[Tensor] = []

    def hook(m, args, output):
        out.append(output[0] if isinstance(output, (tuple, list))
                   else output)
        raise _StopForward

    handle = modules[layer].register_forward_hook(hook)
    try:
        forward_tensor(model, inputs)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not out:
        raise ValueError(f'layer {layer!r} did not run in the forward pass')
    return out[0]


@FUNCTIONS.register_module('pad_dilation_map_image')
def dilation_map_image(model: nn.Module, data: dict,
                       title: str | None = None) -> np.ndarray:
    """The dilation-map figure (:func:`render_dilation_maps`) of one
    pipeline output ``data`` (``dataset[i]``): [H, W, 3] uint8 RGB. Found
    by ``PADDilationMapHook`` through mmengine's ``FUNCTIONS`` registry as
    ``'pad_dilation_map_image'``."""
    device = next(model.parameters()).device
    sample = prepare_sample(model, data, device)
    panels, _ = dilation_panels(model, sample.inputs)
    return render_dilation_maps(sample.image, panels, title=title)
