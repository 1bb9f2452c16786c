"""What a PAD layer's prior can see: a linear probe of the right dilation
from the layer's input.

A PAD prior is a 1x1 function of the layer's input at one pixel (eqs. 3-5:
``U_h`` and ``W_h`` are 1x1 kernels). Whether its hard choice *can*
follow the right dilation of a pixel therefore depends on whether that
pixel's input features hold the information. This module fits a
multinomial logistic regression (the same family as a 1x1 prior followed
by the argmax) from a layer's input features to the right dilation, on
one half of the images, and reports its accuracy on the other half
beside the best constant choice. With ``pool`` > 0 it also fits one on
the features averaged over a (2 pool + 1)^2 window: what a prior with a
larger window could see. A probe near the constant choice means the
information is not at the pixel (the method cannot choose there, whatever
the optimisation); a probe well above it, with the layer's own choice near
the constant, means the information is there and was not used.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from pad_mm.models import PADConv2d
from pad_mm.models.backbones import box_mean

from .evidence import truth_on_grid

__all__ = ['fit_linear_probe', 'capture_pad_inputs', 'probe_pad_layers',
           'probe_checkpoint']


def fit_linear_probe(train_x: Tensor, train_y: Tensor, test_x: Tensor,
                     test_y: Tensor, num_classes: int, steps: int = 200,
                     weight_decay: float = 1e-4) -> float:
    """Accuracy on ``test`` of a multinomial logistic regression fitted on
    ``train`` (features standardised with the training statistics; L-BFGS,
    ``steps`` iterations at most).

    Shapes: train_x [N, C] float, train_y [N] int64 in [0, num_classes),
    the same for test. Returns a float in [0, 1].
    """
    if train_x.ndim != 2 or test_x.ndim != 2 or \
            train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f'fit_linear_probe: features must be [N, C] with '
                         f'the same C, got {tuple(train_x.shape)} and '
                         f'{tuple(test_x.shape)}')
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError('fit_linear_probe: features and targets differ in '
                         'length')
    mean = train_x.mean(0)
    std = train_x.std(0).clamp_min(1e-6)
    xs = ((train_x - mean) / std).double()
    xt = ((test_x - mean) / std).double()
    lin = nn.Linear(xs.shape[1], num_classes).double()
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=steps,
                            line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(xs), train_y) + weight_decay * \
            lin.weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return (lin(xt).argmax(1) == test_y).double().mean().item()


def _selected(model: nn.Module, layers: Sequence[str] | None) -> list[str]:
    """Names of the ``PADConv2d`` modules (``layers`` None) or of the
    ``nn.Conv2d`` modules matching one of the fnmatch patterns."""
    if layers is None:
        return [n for n, m in model.named_modules()
                if isinstance(m, PADConv2d)]
    return [n for n, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and any(
                fnmatch.fnmatchcase(n, p) for p in layers)]


def capture_pad_inputs(model: nn.Module, inputs: Tensor, forward,
                       layers: Sequence[str] | None = None
                       ) -> dict[str, Tensor]:
    """``{name: input [N, C, h, w]}`` of every ``PADConv2d`` of ``model``
    (or of the convs matching the fnmatch patterns ``layers``) during
    ``forward(model, inputs)`` (no gradients)."""
    seen: dict[str, Tensor] = {}
    names = set(_selected(model, layers))
    hooks = [m.register_forward_pre_hook(
        lambda mod, args, n=n: seen.__setitem__(n, args[0].detach()))
        for n, m in model.named_modules() if n in names]
    try:
        with torch.no_grad():
            forward(model, inputs)
    finally:
        for h in hooks:
            h.remove()
    return seen


def probe_pad_layers(features: dict[str, Tensor], truths: np.ndarray,
                     options: Sequence[int], pool: int = 0,
                     steps: int = 200, num_fit: int | None = None
                     ) -> dict[str, dict[str, float]]:
    """Probe every layer's input for the right dilation.

    Args:
        features: ``{layer: [N, C, h, w]}`` (see :func:`capture_pad_inputs`;
            h, w an integer stride below the truth's size).
        truths: [N, H, W] right dilations (values of ``options``).
        options: the dilation options (the probe's classes).
        pool: also probe the features averaged over a (2 pool + 1)^2
            window (0: not).

    The first ``num_fit`` images (default: half of the N) train the
    probe, the others test it. Returns ``{layer: {'probe': acc,
    'probe_pool<r>': acc (pool > 0), 'const': acc of the most frequent
    training class}}``.
    """
    n = len(truths)
    if n < 2:
        raise ValueError(f'probe_pad_layers: need at least 2 images (half '
                         f'train, half test), got {n}')
    half = n // 2 if num_fit is None else num_fit
    if not 0 < half < n:
        raise ValueError(f'probe_pad_layers: num_fit must leave images to '
                         f'fit and to test (1..{n - 1}), got {num_fit}')
    index = {d: i for i, d in enumerate(options)}
    out = {}
    for name, x in features.items():
        if len(x) != n:
            raise ValueError(f'probe_pad_layers: {name} has {len(x)} '
                             f'images, the truths {n}')
        grid = np.stack([truth_on_grid(t, x.shape[-2:]) for t in truths])
        unknown = {int(v) for v in np.unique(grid)} - set(options)
        if unknown:
            raise ValueError(f'probe_pad_layers: right dilations '
                             f'{sorted(unknown)} are not among the options '
                             f'{list(options)}')
        y = torch.as_tensor(np.vectorize(index.get)(grid), dtype=torch.long)
        row = {}
        variants = [('probe', x)]
        if pool:
            variants.append((f'probe_pool{pool}', box_mean(x, pool)))
        for key, feats in variants:
            flat = feats.permute(0, 2, 3, 1).reshape(n, -1, feats.shape[1])
            row[key] = fit_linear_probe(
                flat[:half].reshape(-1, feats.shape[1]),
                y[:half].reshape(-1),
                flat[half:].reshape(-1, feats.shape[1]),
                y[half:].reshape(-1), len(options), steps)
        major = torch.bincount(y[:half].reshape(-1),
                               minlength=len(options)).argmax()
        row['const'] = (y[half:] == major).double().mean().item()
        out[name] = row
    return out


def probe_checkpoint(config, checkpoint: str, num_images: int = 100,
                     pool: int = 3, steps: int = 200, device: str = 'cpu',
                     layers: Sequence[str] | None = None,
                     options: Sequence[int] | None = None
                     ) -> dict[str, dict[str, float]]:
    """:func:`probe_pad_layers` fitted on the first ``num_images``
    training images of a PAD-Evidence config and scored on the first
    ``num_images`` validation images (datasets with a ``dil_map_path``
    prefix), plus each PAD layer's own hard choice on the same validation
    images: ``agree`` and the best constant choice
    ``agree_const``. ``layers`` (fnmatch patterns over conv names) probes
    the inputs of plain convs too (a model without PAD layers: what a
    prior there would see); ``options`` default to the PAD layers' (else
    the generator's ``dilations``)."""
    import os
    import os.path as osp

    from pad_mm.apis.inference import (forward_tensor, load_model,
                                       prepare_image)

    from .evidence import (add_agreement_counts, agreement_counts,
                           read_dilation_map, summarize_agreement)
    from .recorder import chosen_dilation, recording

    model, cfg = load_model(config, checkpoint, device)
    names, inputs, truths = [], [], []
    for loader in ('train_dataloader', 'val_dataloader'):
        ds = cfg[loader].dataset
        prefix = ds.get('data_prefix', {})
        if 'dil_map_path' not in prefix:
            raise ValueError(f'probe_checkpoint: {loader}.dataset.'
                             f'data_prefix has no dil_map_path (a '
                             f'PAD-Evidence config is needed)')
        img_dir = osp.join(ds.data_root, prefix['img_path'])
        dil_dir = osp.join(ds.data_root, prefix['dil_map_path'])
        files = sorted(os.listdir(img_dir))[:num_images]
        names.append(files)
        inputs += [prepare_image(model, cfg, osp.join(img_dir, n),
                                 device).inputs for n in files]
        truths += [read_dilation_map(osp.join(dil_dir, n)) for n in files]
    inputs = torch.cat(inputs)
    truths = np.stack(truths)
    half = len(names[0])
    pads = {n: m for n, m in model.named_modules()
            if isinstance(m, PADConv2d)}
    if not _selected(model, layers):
        raise ValueError(f'probe_checkpoint: no layer to probe (PAD layers'
                         f' of the model, or convs matching {layers})')
    if options is None:
        options = next(iter(pads.values())).dilations if pads else \
            ds.generate['dilations']
    if pads:
        with recording(model) as rec:
            feats = capture_pad_inputs(model, inputs, forward_tensor,
                                       layers)
            maps = rec.maps()
    else:
        feats = capture_pad_inputs(model, inputs, forward_tensor, layers)
        maps = {}
    out = probe_pad_layers(feats, truths, options, pool, steps, half)
    for name, (_, probs) in maps.items():
        if name not in out:
            continue
        chosen = chosen_dilation(probs, pads[name].dilations).cpu().numpy()
        counts: dict[int, tuple[int, int]] = {}
        for c, t in zip(chosen[half:], truths[half:]):
            add_agreement_counts(counts, agreement_counts(
                c, truth_on_grid(t, c.shape)))
        s = summarize_agreement(counts, pads[name].dilations)
        out[name].update(agree=s['agree'], agree_const=s['agree_const'])
    return out
