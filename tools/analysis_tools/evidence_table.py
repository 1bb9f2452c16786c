"""Per-scale accuracy and PAD choice agreement of the runs of a sweep on
PAD-Evidence (configs/demo/evidence/), as a markdown table.

    python tools/analysis_tools/evidence_table.py WORK_DIR

WORK_DIR holds ``<config>/seed_<S>/`` run folders (the layout of
``tools/analysis_tools/sweep.py``, or ``tools/train.py --work-dir`` with
that layout). Each run's final validation (``vis_data/scalars.json``) is
read; per config the table gives mean ± std (n) over seeds of mIoU, pixel
accuracy overall and per true scale (``evidence/acc_d<t>``) and, for PAD
models, the agreement of the layers' hard choice with the right dilation
against the best constant choice and the mean largest probability p_max
(percent); then per PAD layer the agreement overall and per true
dilation, the best constant choice, the share of each chosen dilation and
p_max.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')) and _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from pad_mm.evaluation.evidence import (collect_runs,  # noqa: E402
                                        evidence_table,
                                        layer_agreement_table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('work_dir')
    args = parser.parse_args(argv)
    runs = collect_runs(args.work_dir)
    if not runs:
        print(f'no finished runs (<config>/seed_<S>/*/vis_data/scalars.json '
              f'with a validation) under {args.work_dir}', file=sys.stderr)
        return 1
    print(evidence_table(runs))
    print()
    print('Per PAD layer (percent, mean over seeds):')
    print()
    print(layer_agreement_table(runs))
    return 0


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    sys.exit(main())
