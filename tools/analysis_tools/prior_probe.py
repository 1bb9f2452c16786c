"""What each PAD layer's prior can see: a linear probe of the right
dilation from the layer's input (PAD-Evidence configs).

    python tools/analysis_tools/prior_probe.py CONFIG CHECKPOINT [--pool 3]

A PAD prior is a 1x1 function of the layer's input at one pixel. The
probe (multinomial logistic regression, fitted on the first
--num-images training images, scored on as many validation images) says
how well *any* such
function could pick the right dilation there; ``--pool R`` adds one on
the input averaged over a (2R + 1)^2 window. Printed per layer, in
percent, on the validation images: the probe(s) and their baseline (the
most frequent right dilation of the fit images, as a constant), and for
PAD layers the layer's own hard choice and the best constant choice.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')) and _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from pad_mm.evaluation.probe import probe_checkpoint  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--num-images', type=int, default=100,
                        help='training images to fit on, validation images '
                        'to score on (each)')
    parser.add_argument('--pool', type=int, default=3,
                        help='also probe the input averaged over a '
                        '(2 POOL + 1)^2 window (0: not)')
    parser.add_argument('--layers', nargs='+', metavar='PATTERN',
                        help='probe the inputs of the convs matching these '
                        'fnmatch patterns (e.g. "backbone.convs.*.conv" of '
                        'a vanilla model) instead of the PAD layers')
    parser.add_argument('--out', help='write the numbers as JSON here')
    args = parser.parse_args(argv)
    if args.num_images < 2:
        parser.error(f'--num-images must be >= 2, got {args.num_images}')
    if args.pool < 0:
        parser.error(f'--pool must be >= 0, got {args.pool}')
    res = probe_checkpoint(args.config, args.checkpoint, args.num_images,
                           args.pool, layers=args.layers)
    keys = ['probe'] + ([f'probe_pool{args.pool}'] if args.pool else [])
    keys += ['const'] + (['agree', 'agree_const'] if 'agree' in next(iter(
        res.values())) else [])
    heads = {'probe': 'probe (1x1)', f'probe_pool{args.pool}':
             f'probe ({2 * args.pool + 1}x{2 * args.pool + 1} mean)',
             'const': 'most frequent d of the fit images',
             'agree': 'layer\'s choice',
             'agree_const': 'best constant choice'}
    print('| layer | ' + ' | '.join(heads[k] for k in keys) + ' |')
    print('|---' * (len(keys) + 1) + '|')
    for name, row in res.items():
        print(f'| {name} | ' + ' | '.join(f'{100 * row[k]:.1f}'
                                          for k in keys) + ' |')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(res, f, indent=1)
        print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
