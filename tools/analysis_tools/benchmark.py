"""Whole-model inference speed, PAD next to regular, in one process.

    python tools/analysis_tools/benchmark.py CONFIG [CHECKPOINT] \
        [--num-images N] [--compare REG_CONFIG [--compare-checkpoint CKPT]] \
        [--shape H W] [--warmup W] [--device cpu|cuda] [--out FILE.json]

Times ``model(image, mode='tensor')`` (backbone, neck, head; batch 1;
no data loading or preprocessing) with every PAD layer in hard eval mode
(``eval_mode='hard'``, one dilation per pixel, as deployed), for N images
after W warm-up images. The regular model is ``--compare REG_CONFIG``, or,
without it, the same config with its ``PADBackbone`` turned back into the
plain ``base_type`` backbone. The models take turns image by image (round
robin), so load changes on a shared machine hit both alike; the images are
the same seeded random tensors for both. Prints images/s of each and the
PAD/regular time ratio.

mmseg 1.2.2's ``tools/analysis_tools/benchmark.py`` skips its first 5
images and reports over images 200+, so on a test set of fewer than 200
images (the demo's 100) it prints ``fps: nan``; this tool works for any N.
Without weights (no CHECKPOINT) the PAD layers choose from their initial
priors, i.e. mostly the native dilation: give a trained checkpoint to time
what a trained model chooses.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
import time

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

import torch  # noqa: E402

from pad_mm.apis import (default_input_shape, load_config,  # noqa: E402
                         load_model)
from pad_mm.deploy import regular_config  # noqa: E402
from pad_mm.models import set_eval_mode  # noqa: E402
from pad_mm.ops import sync  # noqa: E402
from pad_mm.apis.validate import PADConfigError  # noqa: E402
from pad_mm.utils import run_tool  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Images/s of a PAD model and its regular counterpart')
    parser.add_argument('config', help='PAD config file')
    parser.add_argument('checkpoint', nargs='?', help='PAD checkpoint')
    parser.add_argument('--num-images', type=int, default=50,
                        help='timed images per model (default 50)')
    parser.add_argument('--warmup', type=int, default=5,
                        help='untimed images per model first (default 5)')
    parser.add_argument('--compare', help='regular config; default: CONFIG '
                        'with its PADBackbone as the plain base_type')
    parser.add_argument('--compare-checkpoint',
                        help='checkpoint of the regular model')
    parser.add_argument('--no-compare', action='store_true',
                        help='time the PAD model only')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='image size; default: the data preprocessor '
                        'size / crop_size (seg) or 224 x 224 (cls)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1')
    parser.add_argument('--out', help='write the numbers as JSON here')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of a config error')
    return parser.parse_args(argv)



def time_models(models: dict, images: list, warmup: int,
                device: torch.device) -> dict[str, float]:
    """Round-robin timing; returns name -> seconds over ``images``."""
    total = {name: 0.0 for name in models}
    with torch.no_grad():
        for x in images[:warmup]:
            for model in models.values():
                model(x, mode='tensor')
        for x in images[warmup:]:
            for name, model in models.items():
                sync(device)
                t0 = time.perf_counter()
                model(x, mode='tensor')
                sync(device)
                total[name] += time.perf_counter() - t0
    return total


def main(argv=None) -> dict:
    args = parse_args(argv)
    for flag in ('num_images', 'warmup'):
        value = getattr(args, flag)
        if value < (1 if flag == 'num_images' else 0):
            raise PADConfigError(f'--{flag.replace("_", "-")}', value,
                                 'a positive int' if flag == 'num_images'
                                 else 'an int >= 0')
    device = torch.device(args.device)
    cfg = load_config(args.config)
    pad_model, cfg = load_model(cfg, args.checkpoint, args.device)
    n_pad = set_eval_mode(pad_model, 'hard')
    if n_pad == 0:
        raise PADConfigError('config', args.config,
                             'a config whose model has PAD layers')
    models = {'PAD (hard)': pad_model}
    reg_source = None
    if not args.no_compare:
        if args.compare:
            reg_cfg, reg_source = load_config(args.compare), args.compare
        else:
            reg_cfg = regular_config(cfg)
            reg_source = f'{args.config} without PAD (base_type backbone)'
            if reg_cfg is None:
                raise PADConfigError(
                    '--compare', None, 'a regular config (the model of '
                    f'{args.config} has no PADBackbone to turn back)')
        reg_model, _ = load_model(reg_cfg, args.compare_checkpoint,
                                  args.device)
        if set_eval_mode(reg_model, 'hard'):
            raise PADConfigError('--compare', reg_source,
                                 'a config without PAD layers')
        models['regular'] = reg_model
    shape = tuple(args.shape) if args.shape else default_input_shape(cfg)
    gen = torch.Generator().manual_seed(0)
    images = [torch.randn(1, 3, *shape, generator=gen).to(device)
              for _ in range(args.warmup + args.num_images)]
    seconds = time_models(models, images, args.warmup, device)
    result = dict(config=args.config, checkpoint=args.checkpoint,
                  compare=reg_source, device=str(device),
                  input_shape=[1, 3, *shape], num_images=args.num_images,
                  warmup=args.warmup, pad_layers=n_pad,
                  torch=torch.__version__, threads=torch.get_num_threads(),
                  images_per_s={k: args.num_images / v
                                for k, v in seconds.items()},
                  seconds=seconds)
    print(f'{args.num_images} images of {shape[0]}x{shape[1]} (batch 1, '
          f'after {args.warmup} warm-up), {device}, '
          f'{torch.get_num_threads()} threads; PAD layers: {n_pad}, hard')
    print(f'{"model":12s} {"images/s":>10s} {"ms/image":>10s}')
    for name, sec in seconds.items():
        print(f'{name:12s} {args.num_images / sec:10.2f} '
              f'{1e3 * sec / args.num_images:10.2f}')
    if 'regular' in seconds:
        ratio = seconds['PAD (hard)'] / seconds['regular']
        result['time_ratio_pad_over_regular'] = ratio
        print(f'PAD / regular time: {ratio:.3f}x  (regular: {reg_source})')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
        print(f'wrote {args.out}')
    return result


if __name__ == '__main__':
    run_tool(main)
