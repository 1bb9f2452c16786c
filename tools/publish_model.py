"""Publish a training checkpoint so that anyone can load it.

    python tools/publish_model.py CKPT OUT [--config CFG] [--shape H W]

A checkpoint written during training holds mmengine objects (the message
hub's ``HistoryBuffer``, optimizer state) that ``torch.load`` of torch >= 2.6
refuses with its default ``weights_only=True``, so it loads only after
pad_mm has patched mmengine's loader (and mmseg's own
``publish_model.py`` fails on it). This tool writes what OpenMMLab publishes:

  ``OUT_STEM-<sha256[:8]>.pth`` = ``{'state_dict': tensors, 'meta': plain}``

``meta`` holds only plain Python values: ``cfg`` (the config text, with
``custom_imports`` of ``pad_mm``, so ``MMSegInferencer(model=None,
weights=FILE)``, mmpretrain's inferencers and ``init_model`` build the PAD
model in a process that never imported pad_mm), ``dataset_meta`` (classes,
palette), ``pad`` (each PAD layer's dilation options, eval/train mode,
aggregation, and tau at the end of training), ``pad_mm_version``,
``mmengine_version``, ``torch_version`` and ``source`` (file name, epoch,
iteration of the training checkpoint).

It then verifies the file: ``torch.load(FILE, weights_only=True)`` must
work, and the model built from the stored config with the stored weights
must give exactly the output of the model built from CKPT (one seeded
random input, eval mode). Only publish checkpoints you trust: CKPT itself is
read with ``weights_only=False``.
"""
import argparse
import hashlib
import os
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

import mmengine  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402

import pad_mm  # noqa: E402
from pad_mm.apis import default_input_shape, load_model  # noqa: E402
from pad_mm.engine.hooks.tau_hook import tau_at  # noqa: E402
from pad_mm.models import PADConv2d  # noqa: E402
from pad_mm.apis.validate import (PADConfigError,  # noqa: E402
                                     PADConfigFileError)
from pad_mm.utils import run_tool  # noqa: E402

PAD_IMPORT = 'pad_mm'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Strip a training checkpoint to weights + plain meta')
    parser.add_argument('checkpoint', help='training checkpoint (.pth)')
    parser.add_argument(
        'out', help='output path; the sha256 prefix is appended to its stem '
        '(work_dirs/pad_demo.pth -> work_dirs/pad_demo-1a2b3c4d.pth)')
    parser.add_argument(
        '--config', help='config file; default: the config text stored in '
        'the checkpoint by mmengine')
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help='input size of the output check; default: the data '
        'preprocessor size / crop_size (seg) or 224 x 224 (cls)')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of a config error')
    return parser.parse_args(argv)


def plain(obj, where: str = 'meta'):
    """``obj`` as plain Python (dict/list/str/int/float/bool/None), the
    only values ``torch.load(weights_only=True)`` accepts besides tensors.

    Raises:
        TypeError: naming where a value of another type sits.
    """
    import numpy as np
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, dict):
        return {str(k): plain(v, f'{where}.{k}') for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v, f'{where}[{i}]') for i, v in enumerate(obj)]
    raise TypeError(f'{where}: {type(obj).__name__} is not plain data')


def stored_config(ckpt: dict, config: str | None):
    """The config to publish: ``--config`` or the checkpoint's, with
    ``custom_imports`` of pad_mm and without run state (load_from,
    resume)."""
    if config is not None:
        if not osp.isfile(config):
            raise PADConfigFileError('--config', config, 'an existing file',
                                     'no such file')
        cfg = load_config(config)  # pad_mm registered for its task
    else:
        text = ckpt.get('meta', {}).get('cfg')
        if text is None:
            text = ckpt.get('message_hub', {}).get('runtime_info',
                                                   {}).get('cfg')
        if not isinstance(text, str):
            raise PADConfigError(
                'checkpoint', 'no config', 'a checkpoint written by an '
                'mmengine Runner (meta.cfg), or pass --config')
        cfg = Config.fromstring(text, file_format='.py')
    imports = cfg.get('custom_imports', {}).get('imports', [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    if PAD_IMPORT not in imports:
        imports.append(PAD_IMPORT)
    cfg.custom_imports = dict(imports=imports, allow_failed_imports=False)
    cfg.load_from = None
    cfg.resume = False
    return cfg


def pad_layers(model) -> dict:
    """Name -> options of every adaptive PAD layer."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, PADConv2d) and m.adaptive:
            out[name] = dict(dilations=list(m.dilations),
                             base_dilation=int(m.dilation[0]),
                             eval_mode=m.eval_mode, train_mode=m.train_mode,
                             aggregation=m.aggregation, tau=float(m.tau))
    return out


def final_tau(cfg, iteration: int | None) -> float | None:
    """tau of the last training iteration under the config's PADTauHook
    (None without the hook or the iteration)."""
    hooks = [h for h in cfg.get('custom_hooks', []) or []
             if h.get('type') == 'PADTauHook']
    if not hooks or not iteration:
        return None
    h = hooks[0]
    total = h.get('anneal_iters') or cfg.get('train_cfg', {}).get(
        'max_iters') or iteration
    return float(tau_at(iteration - 1, h.get('schedule', 'exp'),
                        h.get('tau_start', 1.0), h.get('tau_end', 0.1),
                        int(total)))


def _model_output(cfg, state_dict, shape) -> torch.Tensor:
    model, _ = load_model(cfg)
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    x = torch.rand(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x, mode='tensor')
    if isinstance(out, (list, tuple)):
        out = out[-1]
    return out, model


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def publish(checkpoint: str, out: str, config: str | None = None,
            shape=None) -> dict:
    """Write and verify the published checkpoint; returns ``{'path',
    'sha256', 'pad_layers', 'max_abs_diff'}``."""
    if not osp.isfile(checkpoint):
        raise PADConfigFileError('checkpoint', checkpoint, 'an existing file',
                                 'no such file')
    if not out.endswith('.pth'):
        raise PADConfigError('out', out, 'a path ending in .pth')
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=False)
    state_dict = ckpt.get('state_dict') if isinstance(ckpt, dict) else None
    if not isinstance(state_dict, dict):
        raise PADConfigError('checkpoint', checkpoint,
                             'an mmengine checkpoint with a state_dict')
    state_dict = {k.removeprefix('module.'): v.detach().cpu().clone()
                  for k, v in state_dict.items()}
    cfg = stored_config(ckpt, config)
    shape = tuple(shape) if shape else default_input_shape(cfg)
    reference, model = _model_output(cfg, state_dict, shape)
    src_meta = ckpt.get('meta', {}) or {}
    layers = pad_layers(model)
    tau = final_tau(cfg, src_meta.get('iter'))
    if tau is not None:
        for info in layers.values():
            info['tau'] = tau
    meta = dict(
        cfg=cfg.pretty_text,
        dataset_meta=plain(src_meta.get('dataset_meta'), 'dataset_meta'),
        pad=dict(layers=layers, tau=tau),
        pad_mm_version=pad_mm.__version__,
        mmengine_version=mmengine.__version__,
        torch_version=torch.__version__.split('+')[0],
        source=dict(file=osp.basename(checkpoint),
                    epoch=plain(src_meta.get('epoch')),
                    iter=plain(src_meta.get('iter'))))
    meta = plain(meta)
    out_dir = osp.dirname(osp.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    tmp = osp.join(out_dir, f'.{osp.basename(out)}.tmp')
    torch.save(dict(meta=meta, state_dict=state_dict), tmp)
    digest = sha256_of(tmp)
    final = f'{out[:-len(".pth")]}-{digest[:8]}.pth'
    os.replace(tmp, final)
    # verify: plain torch.load, and the model from the stored config
    loaded = torch.load(final, map_location='cpu', weights_only=True)
    check_cfg = Config.fromstring(loaded['meta']['cfg'], file_format='.py')
    output, _ = _model_output(check_cfg, loaded['state_dict'], shape)
    diff = float((output - reference).abs().max())
    if not torch.equal(output, reference):
        os.remove(final)
        raise RuntimeError(f'published model differs from {checkpoint}: '
                           f'max |diff| = {diff:.3g}; nothing written')
    return dict(path=final, sha256=digest, pad_layers=len(layers),
                max_abs_diff=diff)


def main(argv=None) -> dict:
    args = parse_args(argv)
    result = publish(args.checkpoint, args.out, args.config, args.shape)
    print(f'wrote {result["path"]} (sha256 {result["sha256"]}; '
          f'{result["pad_layers"]} PAD layers; loads with '
          f'torch.load(weights_only=True); output identical to the '
          f'training checkpoint)')
    return result


if __name__ == '__main__':
    run_tool(main)
