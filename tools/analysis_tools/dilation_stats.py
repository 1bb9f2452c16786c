"""Dilation statistics of a checkpoint over the whole test set (the
sigma^2(d) column of the paper's Table 1, next to the config's own
metrics such as mIoU).

    python tools/analysis_tools/dilation_stats.py CONFIG CHECKPOINT \
        --out-dir DIR [--cfg-options ...]

Runs the test loop with ``PADDilationStatsHook`` added to the hooks (it
adds a ``PADDilationMetric`` to the test evaluator unless the config
states one), then writes DIR/
dilation_stats.json (all metrics, and per PAD layer: mean dilation,
sigma^2(d), spatial variance, p_max (mean max softmax(h): the share of
training samples that follow the prior), off_argmax (share of pixels whose
training sample, one Gumbel-max draw, differs from the hard choice) and
the chosen-dilation histogram) and DIR/dilation_stats.png (the
histogram).
"""
import argparse
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from pad_mm.apis import load_config  # noqa: E402
from pad_mm.evaluation import PADDilationMetric  # noqa: E402
from pad_mm.models import pad_report  # noqa: E402
from pad_mm.utils.cli import add_model_args  # noqa: E402
from pad_mm.apis.runner import build_runner  # noqa: E402
from pad_mm.visualization import (render_dilation_histogram,  # noqa: E402
                                  save_png, write_json)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Per-layer dilation statistics over the test set')
    add_model_args(parser)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint: no such file '
                                f'{args.checkpoint!r}')
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('test_evaluator') is None:
        raise ValueError('the config has no test_evaluator')
    # the hook adds a PADDilationMetric to the test evaluator unless the
    # config states one (or PADChoiceAgreementMetric, which is one)
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
        dict(type='PADDilationStatsHook', histogram=False)]
    cfg.load_from = args.checkpoint
    cfg.work_dir = osp.join(args.out_dir, 'test_run')
    cfg.launcher = 'none'
    runner = build_runner(cfg)
    metrics = runner.test()
    metric = next(m for m in runner.test_evaluator.metrics
                  if isinstance(m, PADDilationMetric))
    stats = metric.last_stats
    if 'all' not in stats:
        raise ValueError('no PAD layer ran during the test')
    png = save_png(render_dilation_histogram(stats, title=osp.basename(
        args.checkpoint)), osp.join(args.out_dir, 'dilation_stats.png'))
    result = dict(
        config=args.config, checkpoint=args.checkpoint,
        metrics={k: float(v) for k, v in metrics.items()
                 if isinstance(v, (int, float, np.number))},
        mean_dilation=stats['all']['mean'], var_dilation=stats['all']['var'],
        p_max=stats['all']['p_max'], off_argmax=stats['all']['off_argmax'],
        layers=[dict(name=n, **{k: v for k, v in s.items()})
                for n, s in stats.items() if n != 'all'],
        pad_conversion=pad_report(runner.model))
    write_json(result, osp.join(args.out_dir, 'dilation_stats.json'))
    print(f'{"PAD layer":32s} {"E[d]":>7s} {"sigma^2(d)":>11s} '
          f'{"p_max":>6s} {"off":>6s}  chosen')
    for lay in result['layers']:
        hist = ' '.join(f'd{d}:{f:.3f}'
                        for d, f in zip(lay['dilations'], lay['hist']))
        print(f'{lay["name"]:32s} {lay["mean"]:7.3f} {lay["var"]:11.4g} '
              f'{lay["p_max"]:6.3f} {lay["off_argmax"]:6.3f}  {hist}')
    print(f'{"all PAD layers":32s} {result["mean_dilation"]:7.3f} '
          f'{result["var_dilation"]:11.4g} {result["p_max"]:6.3f} '
          f'{result["off_argmax"]:6.3f}')
    print(f'wrote {png} and dilation_stats.json')
    return result


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
