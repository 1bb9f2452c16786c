"""Receptive fields: the effective receptive field (gradients) and the
positions a stack of (PAD) convs samples, followed back from one output
unit."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from pad_mm.evaluation.recorder import chosen_dilation
from pad_mm.models.layers import PADConv2d

__all__ = [
    'effective_receptive_field', 'module_geometry', 'sampled_positions',
    'conv_trace'
]


def effective_receptive_field(forward: Callable[[Tensor], Tensor],
                              inputs: Tensor,
                              unit: tuple[int, int] | Sequence[tuple[int,
                                                                     int]]
                              ) -> Tensor:
    """ERF of output units (Luo et al., 2016): ``|d y[0, :, i, j].sum()
    / d inputs|`` summed over input channels.

    Args:
        forward: maps inputs [1, C, H, W] to a feature map [1, C', h, w].
        inputs: [1, C, H, W].
        unit: (i, j) on the feature map, or a list of them (one forward
            pass, one backward pass per unit).

    Returns:
        [H, W] non-negative gradient magnitude, or [U, H, W] for a list.
    """
    units = [unit] if isinstance(unit[0], int) else list(unit)
    x = inputs.detach().clone().requires_grad_(True)
    maps = []
    with torch.enable_grad():
        y = forward(x)
        if y.dim() != 4:
            raise ValueError(f'the layer output must be [N, C, h, w], got '
                             f'shape {tuple(y.shape)}')
        for k, (i, j) in enumerate(units):
            if not (0 <= i < y.shape[2] and 0 <= j < y.shape[3]):
                raise ValueError(f'unit {(i, j)} is outside the '
                                 f'{tuple(y.shape[2:])} feature map')
            (grad, ) = torch.autograd.grad(
                y[0, :, i, j].sum(), x, retain_graph=k < len(units) - 1)
            maps.append(grad[0].abs().sum(0).detach())
    return maps[0] if isinstance(unit[0], int) else torch.stack(maps)


def module_geometry(module: nn.Conv2d) -> tuple[int, int, int]:
    """(kernel, stride, dilation) of a square conv."""
    return module.kernel_size[0], module.stride[0], module.dilation[0]


def sampled_positions(layers: Sequence[dict],
                      unit: tuple[int, int]) -> np.ndarray:
    """Receptive field as the positions sampled by a stack of 3x3 (odd k)
    convs, followed backwards from one output unit.

    Args:
        layers: in forward order, one dict per conv with ``kernel``,
            ``stride``, ``in_size`` (H, W of its input), ``out_size`` and
            ``dilation``: an int, or an [H_out, W_out] int array of the
            dilation chosen at each output pixel (PAD).
            Between consecutive convs, the input grid of one is mapped to
            the output grid of the previous by scaling.
        unit: (i, j) on the output grid of the last conv.

    Returns:
        bool [H_in, W_in] mask on the input grid of the first conv.
    """
    oh, ow = layers[-1]['out_size']
    cells = np.zeros((oh, ow), bool)
    cells[unit] = True
    for idx in range(len(layers) - 1, -1, -1):
        lay = layers[idx]
        k, s = lay['kernel'], lay['stride']
        ih, iw = lay['in_size']
        dil = lay['dilation']
        nxt = np.zeros((ih, iw), bool)
        r = (k - 1) // 2
        for i, j in zip(*np.nonzero(cells)):
            d = int(dil[i, j]) if isinstance(dil, np.ndarray) else int(dil)
            for a in range(-r, r + 1):
                for b in range(-r, r + 1):
                    y, x = i * s + a * d, j * s + b * d
                    if 0 <= y < ih and 0 <= x < iw:
                        nxt[y, x] = True
        if idx > 0:
            ph, pw = layers[idx - 1]['out_size']
            if (ph, pw) != (ih, iw):
                ys, xs = np.nonzero(nxt)
                nxt2 = np.zeros((ph, pw), bool)
                nxt2[(ys * ph) // ih, (xs * pw) // iw] = True
                nxt = nxt2
        cells = nxt
    return cells


def conv_trace(model: nn.Module, names: Sequence[str],
               run: Callable[[], object]) -> list[dict]:
    """Geometry of the named convs during ``run()`` (forward order), as
    :func:`sampled_positions` wants it. A PAD layer's ``dilation`` is the
    map of its chosen (argmax) absolute dilation."""
    modules = dict(model.named_modules())
    seen: dict[str, dict] = {}
    order: list[str] = []
    handles = []
    for n in names:
        m = modules.get(n)
        if not isinstance(m, nn.Conv2d):
            raise ValueError(f'{n!r} is not a conv of {type(model).__name__}')

        def hook(mod, args, out, n=n):
            k, s, d = module_geometry(mod)
            info = dict(kernel=k, stride=s, dilation=d,
                        in_size=tuple(args[0].shape[-2:]),
                        out_size=tuple(out.shape[-2:]))
            seen.setdefault(n, {}).update(info)
            if n not in order:
                order.append(n)
        handles.append(m.register_forward_hook(hook))
        if isinstance(m, PADConv2d) and m.adaptive:
            def probe_hook(mod, args, out, n=n, layer=m):
                seen.setdefault(n, {})['chosen'] = chosen_dilation(
                    args[1], layer.abs_dilations)[0].cpu().numpy()
            handles.append(m.probe.register_forward_hook(probe_hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    trace = []
    for n in order:
        info = dict(seen[n], name=n)
        if 'chosen' in info:
            info['dilation'] = info.pop('chosen')
        trace.append(info)
    return trace
