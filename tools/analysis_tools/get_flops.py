"""Parameters and FLOPs of a config's model, counting PAD layers correctly.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--out F]

mmcv's / mmengine's counters match module types and do not count PAD
layers (up to D convs, the hidden-prior convs, the dilation mixing). This
tool measures every conv / matmul that runs with torch's FLOP counter and
counts each PAD layer analytically (see pad_mm/evaluation/complexity.py):
``hard`` = plain conv + prior convs (what hard inference needs), ``soft`` =
D convs + prior + mixing, ``measured`` = the conv / matmul FLOPs the
installed PAD implementation actually ran.

Printed as MACs (multiply-adds), the unit of the OpenMMLab model zoos and
of mmpretrain's get_flops.py, with FLOPs = 2 x MACs next to it; one line
gives the PAD-vs-regular delta (the same model with its PAD layers as plain
convs) for hard and soft PAD layers. mmengine's and mmpretrain's counters
count every dilation branch a PAD layer runs (the soft cost), whatever
eval_mode; mmseg 1.2.2's get_flops.py crashes on every config
(mmseg#3241).
Modules with weights that ran but got no FLOPs are listed as a warning,
never dropped silently.
"""
import argparse
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from pad_mm.apis import (default_input_shape, load_config,  # noqa: E402
                         load_model)
from pad_mm.evaluation import count_flops  # noqa: E402
from pad_mm.models import pad_report  # noqa: E402
from pad_mm.visualization import write_json  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Params and FLOPs with PAD')
    parser.add_argument('config', help='config file')
    parser.add_argument('--checkpoint', help='optional checkpoint (the '
                        'counts do not depend on the weights)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size; default: the data preprocessor '
                        'size / crop_size (seg) or 224 x 224 (cls)')
    parser.add_argument('--out', help='write the numbers as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args(argv)


def _g(x: int) -> str:
    return f'{x / 1e9:.4f}'


def _m(x: int) -> str:
    return f'{x / 1e6:.3f}'


def _pct(x: int, base: int) -> str:
    return f'{100 * (x - base) / base:+.2f}%' if base else 'n/a'


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    shape = tuple(args.shape) if args.shape else default_input_shape(cfg)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f'--shape must be two positive ints, got {shape}')
    model, cfg = load_model(cfg, args.checkpoint)
    inputs = torch.rand(1, 3, *shape,
                        generator=torch.Generator().manual_seed(0))
    report = count_flops(model, lambda: model(inputs, mode='tensor'))
    regular = report.flops_hard - sum(lf.prior for lf in report.pad_layers)
    result = dict(config=args.config, pad_conversion=pad_report(model),
                  input_shape=[1, 3, *shape],
                  flops_unit='FLOPs (1 multiply-add = 2)', **report.to_dict())
    result.update(
        macs=report.flops // 2, macs_hard=report.flops_hard // 2,
        macs_soft=report.flops_soft // 2,
        macs_measured=report.flops_measured // 2,
        macs_regular=regular // 2, flops_regular=regular,
        macs_unit='MACs (multiply-adds, the OpenMMLab model zoos\' unit)')
    print(f'input shape: {tuple(inputs.shape)}')
    print('MACs = multiply-adds, the unit of the OpenMMLab model zoos and '
          'of mmpretrain\'s get_flops.py; FLOPs = 2 x MACs')
    if report.pad_layers:
        print(f'{"PAD layer":32s} {"mode":5s} {"conv":>9s} {"prior":>9s} '
              f'{"mixing":>9s} {"hard":>9s} {"soft":>9s} {"measured":>9s}'
              '  (MMACs)')
        for lf in report.pad_layers:
            print(f'{lf.name:32s} {lf.eval_mode:5s} {_m(lf.conv // 2):>9s} '
                  f'{_m(lf.prior // 2):>9s} {_m(lf.mixing // 2):>9s} '
                  f'{_m(lf.hard // 2):>9s} {_m(lf.soft // 2):>9s} '
                  f'{_m(lf.measured // 2):>9s}')
    print(f'MACs: {_g(report.flops // 2)} G  (FLOPs: {_g(report.flops)} G)  '
          '[PAD layers in their eval_mode]')
    print(f'MACs if all PAD layers hard: {_g(report.flops_hard // 2)} G, '
          f'soft: {_g(report.flops_soft // 2)} G  (FLOPs: '
          f'{_g(report.flops_hard)} G, {_g(report.flops_soft)} G)')
    if report.pad_layers:
        print(f'PAD vs regular (PAD layers as plain convs, '
              f'{_g(regular // 2)} GMACs): '
              f'hard {_pct(report.flops_hard, regular)}, '
              f'soft {_pct(report.flops_soft, regular)}')
    print(f'measured (torch counter, PAD layers as the installed '
          f'implementation ran them, no mixing): '
          f'{_g(report.flops_measured // 2)} GMACs  (FLOPs: '
          f'{_g(report.flops_measured)} G)')
    print(f'Params: {report.params / 1e6:.4f} M (PAD priors '
          f'{report.params_pad_prior}, not run at inference '
          f'{report.params_not_run})')
    if report.uncounted:
        print('WARNING: these modules ran but the counter found no FLOPs '
              f'in them (custom ops?): {report.uncounted}')
    if args.out:
        write_json(result, args.out)
        print(f'wrote {args.out}')
    return result


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
