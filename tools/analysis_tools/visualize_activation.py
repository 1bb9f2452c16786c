"""Activation maps of one layer, PAD vs the regular model (paper Fig. 5 /
Fig. 11).

    python tools/analysis_tools/visualize_activation.py CONFIG CHECKPOINT \
        IMAGE --out-dir DIR [--baseline-config C --baseline-checkpoint K] \
        [--layer NAME]

``--layer`` defaults to the block holding the last PAD layer (e.g.
``backbone.layer4.1`` for ``backbone.layer4.1.conv2``); the regular model
must have a module of that name. Per model: the image, the channel-mean
activation over it (mmengine ``Visualizer.draw_featmap``) and the fraction
of channels active (> 0) per pixel. Writes activation.png,
activation.json (shape, mean, max, active fraction per model) and
activation_<model>.csv (channel-mean map).
"""
import argparse
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

import torch  # noqa: E402

from pad_mm.apis import load_pad_and_baseline, prepare_image  # noqa: E402
from pad_mm.models import pad_layers, pad_report  # noqa: E402
from pad_mm.utils.cli import (add_baseline_args,  # noqa: E402
                              add_model_args, check_baseline_args)
from pad_mm.visualization import (layer_output,  # noqa: E402
                                  render_activations, save_png, write_csv,
                                  write_json)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Activation maps of a layer, PAD vs regular')
    add_model_args(parser, 'PAD ', image='image file')
    add_baseline_args(parser)
    parser.add_argument('--layer', help='module name (default: the block '
                        'holding the last PAD layer)')
    parser.add_argument('--device', default='cpu')
    return check_baseline_args(parser, parser.parse_args(argv))


def main(argv=None) -> dict:
    args = parse_args(argv)
    models = load_pad_and_baseline(args.config, args.checkpoint,
                                   args.baseline_config,
                                   args.baseline_checkpoint, args.device)
    model = models[0].model
    names = [n for n, _ in pad_layers(model)]
    if args.layer:
        layer = args.layer
    elif names:
        layer = names[-1].rpartition('.')[0] or names[-1]
    else:
        raise ValueError(f'{args.config} has no PAD layer: give --layer')
    rows, entries = [], []
    for label, m, c, config, ckpt in models:
        sample = prepare_image(m, c, args.image, args.device)
        with torch.no_grad():
            out = layer_output(m, layer, sample.inputs)
        if out.dim() != 4:
            raise ValueError(f'--layer {layer!r} gives shape '
                             f'{tuple(out.shape)}, not [N, C, h, w]')
        feat = out[0].detach().float().cpu()
        rows.append(dict(label=label, image=sample.image, featmap=feat))
        csv = f'activation_{label}.csv'
        write_csv(feat.mean(0).numpy(), osp.join(args.out_dir, csv))
        entries.append(dict(
            label=label, config=config, checkpoint=ckpt,
            shape=list(feat.shape), mean=float(feat.mean()),
            max=float(feat.max()),
            active_fraction=float((feat > 0).float().mean()),
            map_csv=csv))
    figure = render_activations(rows)
    png = save_png(figure, osp.join(args.out_dir, 'activation.png'))
    result = dict(image=args.image, layer=layer, figure='activation.png',
                  figure_size=list(figure.shape[:2]), models=entries,
                  pad_conversion=pad_report(model))
    write_json(result, osp.join(args.out_dir, 'activation.json'))
    print(f'wrote {png} and activation.json')
    return result


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
