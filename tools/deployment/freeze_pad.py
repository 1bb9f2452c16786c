"""Freeze the PAD layers that do not adapt into plain convs.

    python tools/deployment/freeze_pad.py CONFIG CHECKPOINT --out-dir DIR \
        [--max-other 0.01] [--val] [--images IMG ...] [--cfg-options ...]

1. Runs the model in hard eval (``eval_mode='hard'``) over the validation
   set (or ``--images``) and records, per PAD layer, the share of pixels on
   each dilation (``PADRecorder``'s probe hooks).
2. A layer whose dominant dilation takes ``>= 1 - max_other`` of the pixels
   is a candidate; it is frozen into a plain ``nn.Conv2d`` with that
   dilation (padding ``d*(k-1)//2``) and the same weight and bias, when

   * no PAD layer still needs its hidden priors (a ``recurrent``/``gated``
     chain layer is frozen only with every later layer of its chain), and
   * the written config can say so: the conv's dilation is the one the
     upstream backbone builds, or a change of the backbone's own
     ``dilations`` argument gives it (and changes no other conv; checked
     by building the backbone). Otherwise the layer stays PAD and the
     table says why.
3. Writes DIR/frozen_config.py and DIR/frozen.pth (a plain state dict):

   * every PAD layer froze: a plain upstream config (``PADBackbone``
     replaced by its ``base_type``; ``pad_mm`` dropped from
     ``custom_imports``; PAD hooks dropped; a pad_mm dataset class
     replaced by its upstream base class with the class's metainfo and
     file suffixes), which loads without pad_mm installed;
   * otherwise a PAD config whose ``pad_cfg`` lists only the PAD layers
     left.

   The written config and checkpoint are rebuilt and checked against the
   frozen model on the recorded images (max abs difference printed).
4. Prints and writes DIR/freeze_table.md and DIR/freeze.json: per layer the
   dilation shares, frozen or not (and why), the chosen dilation; with
   ``--val`` the config's test metrics before and after freezing.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from mmengine.config import DictAction  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Freeze non-adapting PAD layers into plain convs')
    p.add_argument('config', help='PAD config file')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--out-dir', required=True, help='output folder')
    p.add_argument('--max-other', type=float, default=0.01,
                   help='freeze a layer when its dominant dilation takes '
                   '>= 1 - MAX_OTHER of the pixels (default 0.01)')
    p.add_argument('--val', action='store_true',
                   help='report the test metrics before and after freezing')
    p.add_argument('--images', nargs='+', default=None,
                   help='images to record the dilation shares on '
                   '(default: the validation set)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value pairs')
    args = p.parse_args(argv)
    if not 0.0 <= args.max_other < 1.0:
        p.error(f'--max-other must be in [0, 1), got {args.max_other}')
    for what, path in (('config', args.config),
                       ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            p.error(f'{what}: no such file {path!r}')
    for img in args.images or []:
        if not osp.isfile(img):
            p.error(f'--images: no such file {img!r}')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    import pad_mm  # noqa: F401
    from pad_mm.deploy import freeze_pad
    out = freeze_pad(args.config, args.checkpoint, args.out_dir,
                     max_other=args.max_other, images=args.images,
                     val=args.val, cfg_options=args.cfg_options)
    if out.untranslated:
        print('the plain config still names pad_mm types: '
              f'{out.untranslated}; it keeps custom_imports=pad_mm')
    print(out.table)
    print(f'wrote {out.result["written_config"]} ({out.result["kind"]} '
          f'config), {out.result["written_checkpoint"]}')
    return out.result


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
