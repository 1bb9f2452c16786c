"""Train a pad_mm (or any mmseg / mmpretrain) config.

The task comes from the config's ``default_scope`` (mmseg: segmentation,
mmpretrain: classification). Flags follow mmseg's ``tools/train.py``.
"""
import argparse
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

from mmengine.config import Config  # noqa: E402

from pad_mm.apis.runner import (  # noqa: E402
    add_default_pad_hooks, add_launch_args, apply_amp, apply_cpu_distributed,
    build_runner, cpu_amp_cfg, parse_launch_args)
from pad_mm.apis.tool_config import load_tool_config  # noqa: E402
from pad_mm.apis.validate import (PADConfigFileError,  # noqa: E402
                                  validate_config)
from pad_mm.runtime.checkpoint import CheckpointError  # noqa: E402
from pad_mm.utils import run_tool  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a PAD model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the latest checkpoint in the work_dir, or from '
        'the given checkpoint')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--amp-dtype',
        default='float16',
        choices=['float16', 'bfloat16'],
        help='dtype of --amp (float16 uses dynamic loss scaling)')
    parser.add_argument(
        '--no-preflight',
        action='store_true',
        help='skip the pre-flight validation of the config (model build, '
        'one dry forward pass, data roots and checkpoint files)')
    add_launch_args(parser)
    return parse_launch_args(parser, argv)


def prepare_cfg(args) -> Config:
    """The config of a training run: file + CLI, validated (pre-flight)
    before anything is built or written."""
    if not osp.isfile(args.config):
        raise PADConfigFileError('config', args.config, 'an existing file',
                                 'no such file')
    # pad_mm registered for the config's task (pad_mm:: bases resolve)
    cfg = load_tool_config(args)
    if args.amp:
        apply_amp(cfg, args.amp_dtype)
    cpu_amp_cfg(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise PADConfigFileError(
                '--resume', args.resume, 'an existing .pth file, or --resume '
                'alone for the latest checkpoint of the work dir',
                'no such checkpoint')
        cfg.resume = True
        cfg.load_from = args.resume
    apply_cpu_distributed(cfg)
    add_default_pad_hooks(cfg)
    if not args.no_preflight:
        validate_config(cfg, 'train')
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = prepare_cfg(args)
    runner = build_runner(cfg)
    try:
        runner.train()
    except CheckpointError as exc:
        # a torn checkpoint to resume from, or a failed checkpoint write:
        # one clear line instead of a traceback
        runner.logger.error(f'error: {exc}')
        raise SystemExit(1) from None
    return runner


if __name__ == '__main__':
    run_tool(main)
