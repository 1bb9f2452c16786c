"""Test a checkpoint of a pad_mm (or any mmseg / mmpretrain) config."""
import argparse
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

from pad_mm.apis.pad_match import (check_pad_match,  # noqa: E402
                                   checkpoint_state, config_is_pad)
from pad_mm.apis.runner import (add_default_pad_hooks,  # noqa: E402
                                add_launch_args, apply_cpu_distributed,
                                build_runner, cpu_amp_cfg, parse_launch_args)
from pad_mm.apis.tool_config import load_tool_config  # noqa: E402
from pad_mm.apis.validate import (PADConfigError,  # noqa: E402
                                  PADConfigFileError, validate_config)
from pad_mm.registry import task_of  # noqa: E402
from pad_mm.utils import run_tool  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a PAD model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and results')
    parser.add_argument(
        '--out',
        type=str,
        help='seg: directory to save the predicted label maps; cls: file '
        '(.pkl) to dump the predictions')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='seg: test-time augmentation (the config\'s tta_pipeline and '
        'tta_model, e.g. multi-scale + flip)')
    parser.add_argument(
        '--show-dir',
        help='seg: directory to save painted predictions; like mmseg\'s '
        'SegVisualizationHook it draws every 50th image only (the 50th, '
        '100th, ...), --show-interval changes that')
    parser.add_argument(
        '--show-interval',
        type=int,
        default=50,
        help='with --show-dir: draw every N-th test image (default 50, '
        'mmseg\'s default; 1 draws all)')
    add_launch_args(parser)
    return parse_launch_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    for name, path in (('config', args.config),
                       ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            raise PADConfigFileError(name, path, 'an existing file',
                                     'no such file')
    cfg = load_tool_config(args)  # pad_mm registered for its task
    cpu_amp_cfg(cfg)
    cfg.load_from = args.checkpoint
    task = task_of(cfg)
    if args.out:
        if task == 'seg' and osp.isfile(args.out):
            raise PADConfigFileError('--out', args.out,
                                     'a directory for the label maps (seg)',
                                     'exists and is a file')
        if task == 'cls' and not args.out.endswith('.pkl'):
            raise PADConfigError('--out', args.out,
                                 'a .pkl file path (classification)')
        if task == 'seg':
            cfg.test_evaluator['output_dir'] = args.out
            cfg.test_evaluator['keep_results'] = True
    if args.tta:
        if task != 'seg':
            raise PADConfigError('--tta', True,
                                 'only with segmentation configs')
        for key in ('tta_pipeline', 'tta_model'):
            if key not in cfg:
                raise PADConfigError('--tta', True,
                                     f'configs that define {key}')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.show_interval < 1:
        raise PADConfigError('--show-interval', args.show_interval,
                             'a positive int (1 draws every image)')
    if args.show_dir:
        if task != 'seg':
            raise PADConfigError('--show-dir', args.show_dir,
                                 'only with segmentation configs')
        hook = cfg.default_hooks.get('visualization')
        if hook is None:
            raise PADConfigError('--show-dir', args.show_dir,
                                 'configs with default_hooks.visualization')
        hook['draw'] = True
        hook['interval'] = args.show_interval
        hook['show'] = False
        cfg.visualizer['save_dir'] = args.show_dir
    apply_cpu_distributed(cfg)
    add_default_pad_hooks(cfg)  # e.g. a warning per NaN/inf image
    validate_config(cfg, 'test')
    # a PAD checkpoint with a vanilla config (or the reverse) would test
    # the wrong model: refused before the runner is built
    check_pad_match(config_is_pad(cfg.model), (),
                    checkpoint_state(args.checkpoint), args.config,
                    args.checkpoint)
    runner = build_runner(cfg)
    if args.out and task == 'cls':
        # as mmpretrain's tools/test.py: dump the predictions with
        # mmengine's DumpResults metric
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    metrics = runner.test()
    return metrics


if __name__ == '__main__':
    run_tool(main)
