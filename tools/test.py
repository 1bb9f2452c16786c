"""Test a checkpoint of a pad_mm (or any mmseg / mmpretrain) config."""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from mmengine.config import Config, DictAction  # noqa: E402

import pad_mm  # noqa: E402,F401
from pad_mm.engine.runner_utils import (apply_cpu_distributed,  # noqa: E402
                                        build_runner, set_work_dir, task_of)


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
        '--show-dir', help='seg: directory to save painted predictions')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    for name, path in (('config', args.config),
                       ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{name}: no such file {path!r}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    set_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    task = task_of(cfg)
    if args.out:
        if task == 'seg':
            cfg.test_evaluator['output_dir'] = args.out
            cfg.test_evaluator['keep_results'] = True
        else:
            cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
                dict(type='mmpretrain.DumpResults', out_file=args.out)]
    if args.show_dir:
        if task != 'seg':
            raise ValueError('--show-dir is for segmentation configs')
        hook = cfg.default_hooks.get('visualization')
        if hook is None:
            raise ValueError('--show-dir needs default_hooks.visualization')
        hook['draw'] = True
        hook['show'] = False
        cfg.visualizer['save_dir'] = args.show_dir
    apply_cpu_distributed(cfg)
    runner = build_runner(cfg)
    metrics = runner.test()
    return metrics


if __name__ == '__main__':
    main()
