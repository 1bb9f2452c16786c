"""Freeze the PAD layers that do not adapt into plain convs.

    python tools/deployment/freeze_pad.py CONFIG CHECKPOINT --out-dir DIR \
        [--max-other 0.01] [--val] [--images IMG ...] [--cfg-options ...]

1. Runs the model in hard eval (``eval_mode='hard'``) over the validation
   set (or ``--images``) and records, per PAD layer, the share of pixels on
   each dilation (``PADRecorder``'s probe hooks).
2. A layer whose dominant dilation takes ``>= 1 - max_other`` of the pixels
   is a candidate; it is frozen into a plain ``nn.Conv2d`` with that
   dilation (padding ``d*(k-1)//2``) and the same weight and bias, when

   * no PAD layer still needs its hidden priors (a ``recurrent``/``gated``
     chain layer is frozen only with every later layer of its chain), and
   * the written config can say so: the conv's dilation is the one the
     upstream backbone builds, or a change of the backbone's own
     ``dilations`` argument gives it (and changes no other conv; checked
     by building the backbone). Otherwise the layer stays PAD and the
     table says why.
3. Writes DIR/frozen_config.py and DIR/frozen.pth (a plain state dict):

   * every PAD layer froze: a plain upstream config (``PADBackbone``
     replaced by its ``base_type``; ``pad_mm`` dropped from
     ``custom_imports``; PAD hooks dropped; a pad_mm dataset class
     replaced by its upstream base class with the class's metainfo and
     file suffixes), which loads without pad_mm installed;
   * otherwise a PAD config whose ``pad_cfg`` lists only the PAD layers
     left.

   The written config and checkpoint are rebuilt and checked against the
   frozen model on the recorded images (max abs difference printed).
4. Prints and writes DIR/freeze_table.md and DIR/freeze.json: per layer the
   dilation shares, frozen or not (and why), the chosen dilation; with
   ``--val`` the config's test metrics before and after freezing.
"""
from __future__ import annotations

import argparse
import copy
import inspect
import json
import math
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from mmengine.config import Config, DictAction  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Freeze non-adapting PAD layers into plain convs')
    p.add_argument('config', help='PAD config file')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--out-dir', required=True, help='output folder')
    p.add_argument('--max-other', type=float, default=0.01,
                   help='freeze a layer when its dominant dilation takes '
                   '>= 1 - MAX_OTHER of the pixels (default 0.01)')
    p.add_argument('--val', action='store_true',
                   help='report the test metrics before and after freezing')
    p.add_argument('--images', nargs='+', default=None,
                   help='images to record the dilation shares on '
                   '(default: the validation set)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value pairs')
    args = p.parse_args(argv)
    if not 0.0 <= args.max_other < 1.0:
        p.error(f'--max-other must be in [0, 1), got {args.max_other}')
    for what, path in (('config', args.config),
                       ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            p.error(f'{what}: no such file {path!r}')
    for img in args.images or []:
        if not osp.isfile(img):
            p.error(f'--images: no such file {img!r}')
    return args


# --- recording ---------------------------------------------------------


def _samples(model, cfg, images):
    from pad_mm.apis.inference import prepare_image, prepare_sample
    if images:
        for path in images:
            yield prepare_image(model, cfg, path)
        return
    from mmengine.registry import DATASETS
    loader = cfg.get('val_dataloader') or cfg.get('test_dataloader')
    if loader is None:
        raise ValueError('the config has no val_dataloader or '
                         'test_dataloader; pass --images')
    dataset = DATASETS.build(copy.deepcopy(loader['dataset']))
    for i in range(len(dataset)):
        yield prepare_sample(model, dataset[i])


def record_shares(model, cfg, images) -> tuple[dict, list]:
    """Per PAD layer: fraction of pixels on each absolute dilation, in hard
    eval. Also returns the model inputs (for the output checks)."""
    import torch

    from pad_mm.evaluation import PADRecorder, summarize_dilation_stats
    rec = PADRecorder(model)
    for _, layer in rec.layers:
        layer.eval_mode = 'hard'
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
    # names relative to the backbone (as pad_cfg and the table use them)
    return {n[len('backbone.'):] if n.startswith('backbone.') else n: dict(
        dilations=stats[n]['dilations'], shares=stats[n]['hist'],
        pixels=stats[n]['count']) for n, _ in rec.layers if n in stats}, \
        inputs


# --- deciding ------------------------------------------------------------


def _conv_geometry(model) -> dict:
    """``name -> (dilation, padding)`` of every conv of a backbone (PAD
    layers: their base dilation)."""
    import torch.nn as nn
    return {n: (m.dilation[0], m.padding[0] if not isinstance(
        m.padding, str) else m.padding)
            for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _build_backbone(base_cfg: dict):
    from mmengine.registry import MODELS
    cfg = copy.deepcopy(base_cfg)
    cfg.pop('init_cfg', None)
    cfg.pop('pretrained', None)
    return MODELS.build(cfg)


def _backbone_base_cfg(backbone_cfg: dict) -> tuple[dict, list]:
    """Upstream backbone dict and the pad_cfg entries of a PADBackbone."""
    bb = copy.deepcopy(dict(backbone_cfg))
    if bb.get('type') != 'PADBackbone':
        raise ValueError("model.backbone.type must be 'PADBackbone' "
                         f"(PAD layers placed by pad_cfg), got "
                         f"{bb.get('type')!r}")
    pad_cfg = bb.pop('pad_cfg')
    bb['type'] = bb.pop('base_type')
    entries = [pad_cfg] if isinstance(pad_cfg, dict) else list(pad_cfg)
    return bb, [dict(e) for e in entries]


def express(base_cfg: dict, wanted: dict[str, int],
            keep: list[str]) -> tuple[dict, set]:
    """Backbone arguments under which the upstream backbone builds each
    conv of ``wanted`` (name -> dilation) with that dilation (and padding
    ``d*(k-1)//2``) and every other conv as before.

    Tries the backbone as configured, then greedy changes of its
    ``dilations`` argument (one stage at a time). Returns the backbone dict
    and the names it satisfies.
    """
    import torch.nn as nn
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
    # a kept PAD layer's base dilation must not change: treat it as wanted
    # at its current dilation
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


def decide(shares: dict, model, base_cfg: dict, entries: list,
           max_other: float) -> tuple[dict, dict]:
    """Per layer: frozen or not, the chosen dilation and the reason."""
    from pad_mm.models import pad_layers
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
        members = sorted((m._chain_index, n) for n, m in layers.items()
                         if m.chain is chain)
        for j, (_, n) in enumerate(members):
            later = [m for _, m in members[j + 1:]]
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


# --- writing ---------------------------------------------------------------


def frozen_model(model, rows: dict):
    """A copy of ``model`` with the frozen PAD layers as ``nn.Conv2d``; the
    PAD layers left are re-linked into their chains."""
    import torch.nn as nn

    from pad_mm.models import link_chain, pad_layers
    model = copy.deepcopy(model)
    layers = dict(pad_layers(model.backbone))
    chains: dict = {}
    for name, layer in layers.items():
        if not rows[name]['frozen']:
            if layer.chain is not None:
                chains.setdefault(id(layer.chain), (layer.chain.name, []))[
                    1].append((layer._chain_index, layer))
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
        link_chain([m for _, m in sorted(members, key=lambda t: t[0])],
                   cname)
    return model.eval()


def _pad_mm_class(type_name, registries) -> type | None:
    for reg in registries:
        try:
            cls = reg.get(type_name)
        except Exception:  # noqa: BLE001
            cls = None
        if cls is not None:
            mod = getattr(cls, '__module__', '') or ''
            return cls if mod.split('.')[0] == 'pad_mm' else None
    return None


def _upstream_dataset(node: dict, cls: type) -> dict:
    """A pad_mm dataset dict as its nearest upstream base class: the
    class's METAINFO and the keyword defaults the base accepts are written
    out; keywords only the subclass knows (e.g. ``generate``) are
    dropped."""
    base = next(b for b in cls.__mro__[1:]
                if not (b.__module__ or '').startswith('pad_mm'))
    base_params = inspect.signature(base.__init__).parameters
    out = {k: v for k, v in node.items()
           if k == 'type' or k in base_params}
    out['type'] = base.__name__
    for k, p in inspect.signature(cls.__init__).parameters.items():
        if k in base_params and k not in out and \
                p.default is not inspect.Parameter.empty:
            out[k] = p.default
    meta = getattr(cls, 'METAINFO', None)
    if meta and 'metainfo' not in out:
        out['metainfo'] = {k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in meta.items()}
    return out


def plain_config(cfg: Config, backbone: dict) -> tuple[Config, list]:
    """The config without pad_mm: the upstream backbone, no pad_mm import,
    no PAD hooks, pad_mm datasets as their upstream base. Returns the
    config and what could not be translated (type names)."""
    import importlib
    scope = cfg.get('default_scope', 'mmseg')
    regmod = importlib.import_module(f'{scope}.registry')
    from mmengine.registry import Registry
    registries = [v for v in vars(regmod).values()
                  if isinstance(v, Registry)]
    new = copy.deepcopy(cfg)
    new.model.backbone = backbone
    ci = new.get('custom_imports')
    if ci is not None:
        imports = [m for m in ci.get('imports', [])
                   if m.split('.')[0] != 'pad_mm']
        if imports:
            new.custom_imports = dict(ci, imports=imports)
        else:
            new.pop('custom_imports')
    if new.get('custom_hooks'):
        new.custom_hooks = [h for h in new.custom_hooks
                            if not _pad_mm_class(h.get('type'), registries)]
    left = []

    def walk(node):
        if isinstance(node, dict):
            t = node.get('type')
            if isinstance(t, str):
                cls = _pad_mm_class(t, registries)
                if cls is not None:
                    if 'Dataset' in [b.__name__ for b in cls.__mro__] or \
                            t.endswith('Dataset'):
                        node = _upstream_dataset(node, cls)
                    else:
                        left.append(t)
            return type(node)({k: walk(v) for k, v in node.items()})
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, tuple):
            return tuple(walk(v) for v in node)
        return node

    for key in list(new.keys()):
        new[key] = walk(new[key])
    return new, left


def pad_config(cfg: Config, base: dict, entries: list, rows: dict) -> Config:
    """The PAD config with only the PAD layers left in ``pad_cfg``."""
    new = copy.deepcopy(cfg)
    import fnmatch
    names = [n for n in rows]
    left_entries = []
    for e in entries:
        pats = e['layers'] if not isinstance(e['layers'], str) else [
            e['layers']]
        mine = [n for n in names if any(fnmatch.fnmatchcase(n, p)
                                        for p in pats)]
        keep = [n for n in mine if not rows[n]['frozen']]
        if keep:
            left_entries.append(dict(e, layers=keep,
                                     name=e.get('name', ','.join(pats))))
    bb = dict(base)
    bb['base_type'] = bb.pop('type')
    bb['type'] = 'PADBackbone'
    bb['pad_cfg'] = left_entries if len(left_entries) > 1 else \
        left_entries[0]
    new.model.backbone = bb
    return new


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


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    import pad_mm  # noqa: F401
    from pad_mm.apis.inference import load_config, load_model
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model, cfg = load_model(cfg, args.checkpoint)
    base, entries = _backbone_base_cfg(cfg.model.backbone)
    shares, inputs = record_shares(model, cfg, args.images)
    rows, new_base = decide(shares, model, base, entries, args.max_other)
    frozen = frozen_model(model, rows)
    all_frozen = all(r['frozen'] for r in rows.values())
    if all_frozen:
        new_cfg, left = plain_config(cfg, new_base)
        if left:
            print('the plain config still names pad_mm types: '
                  f'{sorted(set(left))}; it keeps custom_imports=pad_mm')
            new_cfg.custom_imports = dict(imports=['pad_mm'],
                                          allow_failed_imports=False)
    else:
        new_cfg = pad_config(cfg, new_base, entries, rows)
    os.makedirs(args.out_dir, exist_ok=True)
    cfg_path = osp.join(args.out_dir, 'frozen_config.py')
    ckpt_path = osp.join(args.out_dir, 'frozen.pth')
    new_cfg.dump(cfg_path)
    torch.save(dict(state_dict=frozen.state_dict(),
                    meta=dict(frozen_from=osp.basename(args.checkpoint),
                              max_other=args.max_other)), ckpt_path)
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
    result = dict(config=args.config, checkpoint=args.checkpoint,
                  max_other=args.max_other, images=len(inputs),
                  all_frozen=all_frozen, written_config=cfg_path,
                  written_checkpoint=ckpt_path,
                  kind='plain upstream' if all_frozen else 'PAD',
                  max_abs_diff_frozen_vs_pad=diff_pad,
                  max_abs_diff_written_vs_frozen=diff_rebuilt,
                  layers=[dict(name=n, **r) for n, r in rows.items()])
    if args.val:
        result['metrics_before'] = _run_test(
            cfg, args.checkpoint, osp.join(args.out_dir, 'test_before'))
        result['metrics_after'] = _run_test(
            new_cfg, ckpt_path, osp.join(args.out_dir, 'test_after'))
    md = freeze_table(result)
    print(md)
    with open(osp.join(args.out_dir, 'freeze_table.md'), 'w') as f:
        f.write(md + '\n')
    with open(osp.join(args.out_dir, 'freeze.json'), 'w') as f:
        json.dump(result, f, indent=1)
    print(f'wrote {cfg_path} ({result["kind"]} config), {ckpt_path}')
    return result


def freeze_table(result: dict) -> str:
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
                 f"output difference {result['max_abs_diff_frozen_vs_pad']:.3g}")
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


if __name__ == '__main__':
    main()
