"""Static report of the PAD Triton kernels compiled for sm_90, no GPU.

    python tools/analysis_tools/kernel_report.py --out kernel_report.json
    python tools/analysis_tools/kernel_report.py --shapes r101_layer4_os8_b2

Compiles every kernel launch of a PAD forward + backward and of a hard
forward at ResNet-101 layer4 shapes (bf16 activations, fp32 weights,
channels_last) with ``triton.compile`` for ``GPUTarget('cuda', 90, 32)``
at the specialisation a real launch gets, and prints registers, spills,
shared memory, the widths of the global loads and stores in the PTX, and
an analytic H100 roofline against cuDNN (:mod:`pad_mm.ops.kernel_report`
holds the logic). Needs torch and triton only.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

from pad_mm.ops import kernel_report  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shapes', default=','.join(kernel_report.SHAPES),
                        help='comma-separated names from: ' +
                        ', '.join(kernel_report.SHAPES))
    parser.add_argument('--out', help='write the report as JSON here')
    args = parser.parse_args(argv)
    names = args.shapes.split(',')
    bad = [n for n in names if n not in kernel_report.SHAPES]
    if bad:
        parser.error(f'--shapes must name shapes from '
                     f'{sorted(kernel_report.SHAPES)}, got {bad}')
    args.shapes = {n: kernel_report.SHAPES[n] for n in names}
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    report = kernel_report.build_report(args.shapes)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
    print(kernel_report.markdown_table(report))
    return report


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
