"""Freeze the PAD layers that do not adapt into plain convs (the library of
``tools/deployment/freeze_pad.py``, whose docstring describes the whole
procedure).

1. :func:`record_shares`: per PAD layer, the share of pixels on each
   dilation in hard eval over some images.
2. :func:`decide`: which layers freeze (dominant dilation >= ``1 -
   max_other``, chains, what the upstream backbone's arguments can say,
   :func:`express`).
3. :func:`frozen_model`: the model with those layers as ``nn.Conv2d``.
4. :func:`freeze_pad`: all of it for a config and checkpoint, writing
   ``frozen_config.py``, ``frozen.pth``, ``freeze_table.md`` and
   ``freeze.json``.
"""
from __future__ import annotations

import copy
import json
import math
import os
import os.path as osp
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DATASETS, MODELS

from pad_mm.apis.inference import (ImageBatch, load_config, load_model,
                                   prepare_image, prepare_sample)
from pad_mm.evaluation import PADRecorder, summarize_dilation_stats
from pad_mm.models import link_chain, pad_layers, set_eval_mode

from .frozen_config import backbone_base_cfg, pad_config, plain_config

__all__ = [
    'record_shares', 'express', 'decide', 'frozen_model', 'freeze_table',
    'FreezeOutcome', 'freeze_pad'
]


def _samples(model: nn.Module, cfg: Config,
             images: Sequence[str] | None) -> Iterator[ImageBatch]:
    if images:
        for path in images:
            yield prepare_image(model, cfg, path)
        return
    loader = cfg.get('val_dataloader') or cfg.get('test_dataloader')
    if loader is None:
        raise ValueError('the config has no val_dataloader or '
                         'test_dataloader; pass --images')
    dataset = DATASETS.build(copy.deepcopy(loader['dataset']))
    for i in range(len(dataset)):
        yield prepare_sample(model, dataset[i])


def record_shares(model: nn.Module, cfg: Config,
                  images: Sequence[str] | None) -> tuple[dict, list]:
    """Per PAD layer (name relative to the backbone, as ``pad_cfg`` names
    it): ``dict(dilations, shares, pixels)``, the fraction of pixels on
    each absolute dilation in hard eval (the model is left in hard eval)
    over ``images``, or over the config's validation set when None. Also
    returns the model inputs ([1, 3, H, W] each, for the output checks).

    Raises:
        ValueError: no image to record on.
    """
    rec = PADRecorder(model)
    set_eval_mode(model, 'hard')
    inputs = []
    sums: dict = {}
    with rec, torch.no_grad():
        for smp in _samples(model, cfg, images):
            model(smp.inputs, mode='tensor')
            inputs.append(smp.inputs)
            for name, s in rec.pop_sums().items():
                if name in sums:
                    for k in ('count', 'sum_mean', 'sum_mean_sq', 'sum_var',
                              'hist'):
                        sums[name][k] = sums[name][k] + s[k]
                else:
                    sums[name] = s
    if not inputs:
        raise ValueError('no image to record the dilation shares on')
    stats = summarize_dilation_stats(sums)
    return {n[len('backbone.'):] if n.startswith('backbone.') else n: dict(
        dilations=stats[n]['dilations'], shares=stats[n]['hist'],
        pixels=stats[n]['count']) for n, _ in rec.layers if n in stats}, \
        inputs


def _conv_geometry(model: nn.Module) -> dict:
    """``name -> (dilation, padding)`` of every conv of a backbone (PAD
    layers: their base dilation)."""
    return {n: (m.dilation[0], m.padding[0] if not isinstance(
        m.padding, str) else m.padding)
            for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _build_backbone(base_cfg: dict) -> nn.Module:
    cfg = copy.deepcopy(base_cfg)
    cfg.pop('init_cfg', None)
    cfg.pop('pretrained', None)
    return MODELS.build(cfg)


def express(base_cfg: dict, wanted: dict[str, int],
            keep: list[str]) -> tuple[dict, set]:
    """Backbone arguments under which the upstream backbone builds each
    conv of ``wanted`` (name -> dilation) with that dilation (and padding
    ``d*(k-1)//2``) and every other conv as before.

    Tries the backbone as configured, then greedy changes of its
    ``dilations`` argument (one stage at a time). Returns the backbone dict
    and the names it satisfies. The kept PAD layers ``keep`` must keep
    their base dilation (they are added to ``wanted`` at it).
    """
    ref = _build_backbone(base_cfg)
    before = _conv_geometry(ref)
    ks = {n: m.kernel_size[0] for n, m in ref.named_modules()
          if isinstance(m, nn.Conv2d)}

    def satisfied(cfg: dict) -> set | None:
        try:
            geo = _conv_geometry(_build_backbone(cfg))
        except Exception:  # noqa: BLE001  (an invalid candidate)
            return None
        ok = set()
        for n, g in geo.items():
            if n in wanted:
                d = wanted[n]
                if g == (d, d * (ks[n] - 1) // 2):
                    ok.add(n)
            elif g != before.get(n):
                return None  # changes a conv that must stay as it is
        return ok

    best_cfg = copy.deepcopy(base_cfg)
    best = satisfied(best_cfg) or set()
    for n in keep:
        wanted.setdefault(n, before[n][0])
        if before[n][0] == wanted[n]:
            best.add(n)
    dil = base_cfg.get('dilations')
    if isinstance(dil, (list, tuple)) and len(best) < len(wanted):
        values = sorted(set(wanted.values()))
        for i in range(len(dil)):
            for v in values:
                cand = copy.deepcopy(best_cfg)
                d2 = list(cand['dilations'])
                if d2[i] == v:
                    continue
                d2[i] = v
                cand['dilations'] = tuple(d2)
                got = satisfied(cand)
                if got is not None and got > best:
                    best, best_cfg = got, cand
    return best_cfg, best


def decide(shares: dict, model: nn.Module, base_cfg: dict,
           max_other: float) -> tuple[dict, dict]:
    """Per PAD layer of ``model.backbone``: ``dict(frozen, reason)`` and,
    for a layer that ran, ``dilations``, ``shares``, the dominant
    ``dilation`` and its ``dominant_share``. A layer freezes when its
    dominant dilation takes ``>= 1 - max_other`` of the pixels, no kept
    layer needs its hidden priors, and the backbone's arguments can say
    the dilation (:func:`express`). Returns the rows and the backbone
    dict that builds the frozen convs."""
    layers = dict(pad_layers(model.backbone))
    rows = {}
    for name, layer in layers.items():
        sh = shares.get(name)
        if sh is None:
            rows[name] = dict(frozen=False, reason='did not run')
            continue
        top = max(range(len(sh['shares'])), key=lambda i: sh['shares'][i])
        rows[name] = dict(
            dilations=sh['dilations'], shares=sh['shares'],
            dilation=sh['dilations'][top], dominant_share=sh['shares'][top],
            frozen=sh['shares'][top] >= 1 - max_other - 1e-12,
            reason='' if sh['shares'][top] >= 1 - max_other - 1e-12 else
            f'other dilations take {1 - sh["shares"][top]:.4f} > '
            f'max_other={max_other}')
    # hidden-prior chains: a layer whose h feeds a kept PAD layer stays
    for _, layer in layers.items():
        chain = layer.chain
        if chain is None or not layer.prior.uses_hidden:
            continue
        # chain order: a PADBackbone links its chains in module order
        # (pad_mm.models.match_pad_cfg), the order of pad_layers
        members = [n for n, m in layers.items() if m.chain is chain]
        for j, n in enumerate(members):
            later = members[j + 1:]
            if rows[n]['frozen'] and any(not rows[m]['frozen']
                                         for m in later):
                rows[n].update(frozen=False, reason=(
                    'its hidden priors feed a PAD layer that stays '
                    f'({layer.aggregation} chain)'))
    wanted = {n: r['dilation'] for n, r in rows.items() if r['frozen']}
    keep = [n for n, r in rows.items() if not r['frozen']]
    new_base, ok = express(base_cfg, dict(wanted), keep)
    for n in wanted:
        if n not in ok:
            rows[n].update(frozen=False, reason=(
                f'dilation {wanted[n]} cannot be expressed by the arguments '
                f'of {base_cfg["type"]}'))
    if any(r['frozen'] is False for n, r in rows.items() if n in wanted):
        # fewer frozen layers: re-derive the backbone arguments
        wanted = {n: r['dilation'] for n, r in rows.items() if r['frozen']}
        keep = [n for n, r in rows.items() if not r['frozen']]
        new_base, ok = express(base_cfg, dict(wanted), keep)
        assert set(wanted) <= ok
    return rows, new_base


def frozen_model(model: nn.Module, rows: dict) -> nn.Module:
    """A copy of ``model`` (in eval mode) with the frozen PAD layers of
    its backbone as ``nn.Conv2d`` of the chosen dilation (padding
    ``d*(k-1)//2``, same weight and bias); the PAD layers left are
    re-linked into their chains."""
    model = copy.deepcopy(model)
    layers = dict(pad_layers(model.backbone))
    chains: dict = {}
    for name, layer in layers.items():
        if not rows[name]['frozen']:
            if layer.chain is not None:
                chains.setdefault(id(layer.chain), (layer.chain.name, []))[
                    1].append(layer)  # module order = chain order
            continue
        d = rows[name]['dilation']
        k = layer.kernel_size[0]
        conv = nn.Conv2d(layer.in_channels, layer.out_channels, k,
                         layer.stride, d * (k - 1) // 2, d, layer.groups,
                         layer.bias is not None)
        conv.to(layer.weight.device, layer.weight.dtype)
        conv.weight.data.copy_(layer.weight.data)
        if layer.bias is not None:
            conv.bias.data.copy_(layer.bias.data)
        parent, _, attr = name.rpartition('.')
        setattr(model.backbone.get_submodule(parent) if parent else
                model.backbone, attr, conv)
    for cname, members in chains.values():
        link_chain(members, cname)
    return model.eval()


def _run_test(cfg: Config, checkpoint: str, work_dir: str) -> dict:
    import numpy as np

    from pad_mm.apis.runner import build_runner
    cfg = copy.deepcopy(cfg)
    cfg.load_from = checkpoint
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    runner = build_runner(cfg)
    metrics = runner.test()
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float, np.number))}


def freeze_table(result: dict) -> str:
    """Markdown of a freeze result (:attr:`FreezeOutcome.result`): per
    layer the dilation shares, frozen or not and why; a summary line; the
    test metrics before and after when they were measured."""
    lines = ['| PAD layer | shares (dilation: share) | frozen | dilation | '
             'why not |', '|---|---|---|---|---|']
    for r in result['layers']:
        sh = ', '.join(f'{d}: {s:.4f}' for d, s in zip(
            r.get('dilations', []), r.get('shares', [])))
        lines.append(f"| {r['name']} | {sh} | "
                     f"{'yes' if r['frozen'] else 'no'} | "
                     f"{r.get('dilation', '')} | {r['reason']} |")
    lines.append('')
    lines.append(f"{sum(r['frozen'] for r in result['layers'])} of "
                 f"{len(result['layers'])} PAD layers frozen (max_other="
                 f"{result['max_other']}, {result['images']} images); "
                 f"written: {result['kind']} config; max |frozen - PAD| "
                 'output difference '
                 f"{result['max_abs_diff_frozen_vs_pad']:.3g}")
    if 'metrics_before' in result:
        for k, v in result['metrics_before'].items():
            after = result['metrics_after'].get(k)
            if after is None or math.isnan(after):
                after_text = '- after freezing (not a PAD layer any more)'
            else:
                after_text = f'{after:.4g} after freezing'
            lines.append(f'{k}: {v:.4g} before, {after_text}')
        lines.append('(pad/mean_dilation and pad/var_dilation average over '
                     'the PAD layers present: after freezing, only the '
                     'layers that stayed PAD)')
    return '\n'.join(lines)


@dataclass
class FreezeOutcome:
    """What :func:`freeze_pad` did."""
    result: dict  # as written to freeze.json
    table: str  # as written to freeze_table.md
    #: pad_mm type names the plain config still holds (it then keeps
    #: ``custom_imports=['pad_mm']``)
    untranslated: list[str]


def freeze_pad(config: str, checkpoint: str, out_dir: str, *,
               max_other: float = 0.01,
               images: Sequence[str] | None = None, val: bool = False,
               cfg_options: dict | None = None) -> FreezeOutcome:
    """Freeze the PAD layers of ``config`` + ``checkpoint`` that do not
    adapt and write ``out_dir``/``frozen_config.py`` (a plain upstream
    config when every layer froze, else a PAD config with the layers
    left), ``frozen.pth`` (a plain state dict), ``freeze_table.md`` and
    ``freeze.json``. The shares are recorded on ``images`` (default: the
    validation set); ``val`` adds the config's test metrics before and
    after freezing.

    Raises:
        ValueError: ``max_other`` not in [0, 1); the config's backbone is
            not a ``PADBackbone``; no image.
        RuntimeError: the written config + checkpoint do not reproduce the
            frozen model (max abs output difference > 1e-4).
    """
    if not 0.0 <= max_other < 1.0:
        raise ValueError(f'max_other must be in [0, 1), got {max_other}')
    cfg = load_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model, cfg = load_model(cfg, checkpoint)
    base, entries = backbone_base_cfg(cfg.model.backbone)
    shares, inputs = record_shares(model, cfg, images)
    rows, new_base = decide(shares, model, base, max_other)
    frozen = frozen_model(model, rows)
    all_frozen = all(r['frozen'] for r in rows.values())
    left: list[str] = []
    if all_frozen:
        new_cfg, left = plain_config(cfg, new_base)
        if left:
            new_cfg.custom_imports = dict(imports=['pad_mm'],
                                          allow_failed_imports=False)
    else:
        new_cfg = pad_config(cfg, new_base, entries, rows)
    os.makedirs(out_dir, exist_ok=True)
    cfg_path = osp.join(out_dir, 'frozen_config.py')
    ckpt_path = osp.join(out_dir, 'frozen.pth')
    new_cfg.dump(cfg_path)
    torch.save(dict(state_dict=frozen.state_dict(),
                    meta=dict(frozen_from=osp.basename(checkpoint),
                              max_other=max_other)), ckpt_path)
    # check: the written config + checkpoint give the frozen model's output
    rebuilt, _ = load_model(cfg_path, ckpt_path)
    diff_rebuilt = diff_pad = 0.0
    with torch.no_grad():
        for x in inputs:
            y = frozen(x, mode='tensor')
            diff_rebuilt = max(diff_rebuilt, float(
                (rebuilt(x, mode='tensor') - y).abs().max()))
            diff_pad = max(diff_pad, float(
                (model(x, mode='tensor') - y).abs().max()))
    if diff_rebuilt > 1e-4:
        raise RuntimeError(f'the written config/checkpoint do not reproduce'
                           f' the frozen model (max abs diff '
                           f'{diff_rebuilt:.3g})')
    result = dict(config=config, checkpoint=checkpoint,
                  max_other=max_other, images=len(inputs),
                  all_frozen=all_frozen, written_config=cfg_path,
                  written_checkpoint=ckpt_path,
                  kind='plain upstream' if all_frozen else 'PAD',
                  max_abs_diff_frozen_vs_pad=diff_pad,
                  max_abs_diff_written_vs_frozen=diff_rebuilt,
                  layers=[dict(name=n, **r) for n, r in rows.items()])
    if val:
        result['metrics_before'] = _run_test(
            cfg, checkpoint, osp.join(out_dir, 'test_before'))
        result['metrics_after'] = _run_test(
            new_cfg, ckpt_path, osp.join(out_dir, 'test_after'))
    md = freeze_table(result)
    with open(osp.join(out_dir, 'freeze_table.md'), 'w') as f:
        f.write(md + '\n')
    with open(osp.join(out_dir, 'freeze.json'), 'w') as f:
        json.dump(result, f, indent=1)
    return FreezeOutcome(result, md, sorted(set(left)))
