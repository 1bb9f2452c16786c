"""Parameters and FLOPs that count PAD layers correctly.

mmcv's / mmengine's counters dispatch on module types and do not know
``PADConv2d`` (a subclass of ``nn.Conv2d`` that runs up to D convs, a
prior and a probability-weighted sum), so they under-count it silently.
Here the whole model is measured with ``torch.utils.flop_counter`` (every
conv / matmul that actually runs, attributed to the module that ran it)
and each PAD layer is also counted analytically:

* ``conv``: the plain conv at this geometry (one dilation);
* ``prior``: the 1x1 convs of the hidden prior (``U_h``; plus ``W_h`` for
  recurrent, plus the gate convs ``U_a``, ``W_a`` for gated aggregation);
* ``mixing``: the probability-weighted sum of the D branch outputs
  (one multiply and one add per option and output element);
* ``hard`` = conv + prior: what hard inference needs (one dilation per
  pixel, chosen by argmax of the priors);
* ``soft`` = D * conv + prior + mixing (soft / Gumbel inference);
* ``measured``: the conv / matmul FLOPs the selected implementation
  actually ran in this forward, as torch's counter saw them inside the
  layer (e.g. the sparse hard path of ``impl='im2col'`` runs one GEMM of
  the plain conv's size, ``impl='reference'`` runs all D convs even in
  hard mode). Element-wise work (the mixing) is not in it.

FLOPs follow torch's counter: one multiply-add = 2 FLOPs, convolutions and
matrix products only (no bias, normalisation or activation).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from pad_mm.models.layers import PADConv2d, pad_layers
from pad_mm.ops import conv_out_size

__all__ = ['pad_layer_flops', 'count_flops', 'FlopReport', 'LayerFlops']


def pad_layer_flops(layer: PADConv2d,
                    input_shape: tuple[int, int, int, int]) -> dict[str, int]:
    """Analytic FLOPs of one adaptive PAD layer for an input [N, C, H, W].

    Returns ``conv``, ``prior``, ``mixing``, ``hard`` and ``soft`` (see the
    module docstring).
    """
    if not isinstance(layer, PADConv2d) or not layer.adaptive:
        raise ValueError(f'layer must be an adaptive PADConv2d, got '
                         f'{layer!r}')
    n, c, h, w = input_shape
    s = layer.stride[0]
    k = layer.kernel_size[0]
    ho, wo = conv_out_size(h, k, s), conv_out_size(w, k, s)
    px = n * ho * wo
    d = len(layer.dilations)
    conv = 2 * px * layer.out_channels * (c // layer.groups) * k * k
    # z of the aggregation (U_h x, W_h h, the gate; nothing for 'static')
    prior = layer.prior.agg.flops(px, c, d)
    mixing = 2 * px * d * layer.out_channels
    return dict(conv=conv, prior=prior, mixing=mixing, hard=conv + prior,
                soft=d * conv + prior + mixing)


@dataclass
class LayerFlops:
    name: str
    input_shape: list[int]
    dilations: list[int]
    eval_mode: str
    conv: int
    prior: int
    mixing: int
    hard: int
    soft: int
    measured: int
    params: int
    prior_params: int

    @property
    def inference(self) -> int:
        """FLOPs of this layer's ``eval_mode``."""
        return self.hard if self.eval_mode == 'hard' else self.soft


@dataclass
class FlopReport:
    """Whole-model numbers. ``flops``: the inference cost with every PAD
    layer in its own ``eval_mode`` (``flops_hard`` / ``flops_soft``: all
    hard / all soft); ``flops_measured``: what torch's counter saw in the
    forward (PAD layers as their implementation ran them, no mixing)."""
    flops: int
    flops_hard: int
    flops_soft: int
    flops_measured: int
    params: int
    params_pad_prior: int
    params_not_run: int
    pad_layers: list[LayerFlops] = field(default_factory=list)
    uncounted: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _fqn_key(root: nn.Module, name: str) -> str:
    return type(root).__name__ + ('.' + name if name else '')


def count_flops(model: nn.Module, run: Callable[[], object]) -> FlopReport:
    """Count FLOPs of ``run()`` (a forward of ``model``) and params.

    ``uncounted`` lists modules with a weight of 2+ dims that ran but got
    no FLOPs from the counter (e.g. custom C++/CUDA ops), so that an
    under-count is never silent; ``params_not_run`` are the parameters of
    modules that did not run (e.g. auxiliary heads at inference).
    """
    pads = dict(pad_layers(model))
    shapes: dict[str, tuple] = {}
    ran: set[str] = set()
    handles = []
    for name, mod in model.named_modules():
        def hook(m, args, out, name=name):
            ran.add(name)
            if name in pads:
                shapes[name] = tuple(args[0].shape)
        handles.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            run()
    finally:
        for h in handles:
            h.remove()
    counts = counter.get_flop_counts()

    def measured(name: str) -> int:
        return int(sum(counts.get(_fqn_key(model, name), {}).values()))

    total = int(counter.get_total_flops())
    layers = []
    for name, layer in pads.items():
        if name not in shapes:
            continue
        a = pad_layer_flops(layer, shapes[name])
        meas = measured(name)
        layers.append(LayerFlops(
            name=name, input_shape=list(shapes[name]),
            dilations=list(layer.abs_dilations), eval_mode=layer.eval_mode,
            conv=a['conv'], prior=a['prior'], mixing=a['mixing'],
            hard=a['hard'], soft=a['soft'], measured=meas,
            params=sum(p.numel() for p in layer.parameters()),
            prior_params=sum(p.numel() for p in layer.prior.parameters())))
    base = total - sum(lf.measured for lf in layers)
    uncounted = []
    for name, mod in model.named_modules():
        if name in pads or any(name.startswith(p + '.') for p in pads):
            continue
        own = [p for p in mod.parameters(recurse=False) if p.dim() >= 2]
        if name in ran and own and not isinstance(mod, nn.Embedding) \
                and measured(name) == 0:
            uncounted.append(f'{name} ({type(mod).__name__})')
    not_run = sum(
        p.numel() for name, mod in model.named_modules()
        if name not in ran for p in mod.parameters(recurse=False))
    return FlopReport(
        flops=base + sum(lf.inference for lf in layers),
        flops_hard=base + sum(lf.hard for lf in layers),
        flops_soft=base + sum(lf.soft for lf in layers),
        flops_measured=total,
        params=sum(p.numel() for p in model.parameters()),
        params_pad_prior=sum(lf.prior_params for lf in layers),
        params_not_run=not_run,
        pad_layers=layers,
        uncounted=uncounted)
