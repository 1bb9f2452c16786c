"""Receptive fields (RF) and effective receptive fields (ERF) at chosen
pixels, PAD vs the regular model (paper Fig. 3).

    python tools/analysis_tools/visualize_rf.py CONFIG CHECKPOINT IMAGE \
        --out-dir DIR [--baseline-config C --baseline-checkpoint K] \
        [--pixels X,Y ...] [--layer NAME]

* RF = the positions sampled by the PAD layers (in call order) for the
  output unit of the last PAD layer under the pixel, each with the
  dilation it chose (argmax) there; for the regular model the convs of
  the same names with their fixed dilation. Drawn as white cells (one
  cell = one position of the first PAD layer's input grid, in image
  pixels).
* ERF (Luo et al., 2016) = |d y / d input| of the unit under the pixel,
  y = output of ``--layer`` (default: the last PAD layer) summed over
  channels; drawn as a heat map.

Writes rf.png (one row per model, one column per pixel), rf.json (per
model and pixel: unit, RF cells and box, ERF box at 1% of its maximum,
CSV name) and erf_<model>_<k>.csv.
"""
import argparse
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pad_mm.apis import (forward_tensor,  # noqa: E402
                         load_pad_and_baseline, prepare_image)
from pad_mm.models import pad_layers, pad_report  # noqa: E402
from pad_mm.utils.cli import (add_baseline_args,  # noqa: E402
                              add_model_args, check_baseline_args)
from pad_mm.visualization import (conv_trace,  # noqa: E402
                                  effective_receptive_field, layer_output,
                                  render_receptive_fields, sampled_positions,
                                  save_png, write_csv, write_json)


def _pixel(text: str) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'--pixels entries are X,Y in image pixels, got {text!r}')
    return x, y


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='RF and ERF, PAD vs regular')
    add_model_args(parser, 'PAD ', image='image file')
    add_baseline_args(parser)
    parser.add_argument('--pixels', type=_pixel, nargs='+',
                        help='X,Y image pixels (default: centre and two '
                        'quarter points)')
    parser.add_argument('--layer', help='module whose output unit is '
                        'differentiated for the ERF (default: the last PAD '
                        'layer)')
    parser.add_argument('--device', default='cpu')
    return check_baseline_args(parser, parser.parse_args(argv))


def analyse(model, cfg, image_path, names, layer, pixels, device):
    """RF cells and ERF of ``model`` at ``pixels``."""
    sample = prepare_image(model, cfg, image_path, device)
    H, W = sample.image.shape[:2]
    for x, y in pixels:
        if not (0 <= x < W and 0 <= y < H):
            raise ValueError(f'--pixels: ({x},{y}) is outside the {W}x{H} '
                             'image the model sees')
    trace = conv_trace(model, names,
                       lambda: forward_tensor(model, sample.inputs))
    missing = [n for n in names if n not in {t['name'] for t in trace}]
    if missing:
        raise ValueError(f'layers {missing} did not run')
    ih, iw = trace[0]['in_size']
    oh, ow = trace[-1]['out_size']
    with torch.no_grad():
        lh, lw = layer_output(model, layer, sample.inputs).shape[-2:]
    erf_units = [(y * lh // H, x * lw // W) for x, y in pixels]
    erfs = effective_receptive_field(
        lambda t: layer_output(model, layer, t), sample.inputs, erf_units)
    units = []
    for (x, y), erf_unit, erf in zip(pixels, erf_units, erfs):
        unit = (y * oh // H, x * ow // W)
        mask = sampled_positions(trace, unit)
        sy, sx = H / ih, W / iw
        cells = [[c * sx, r * sy, (c + 1) * sx, (r + 1) * sy]
                 for r, c in zip(*np.nonzero(mask))]
        erf = erf[:H, :W].cpu().numpy()
        ys, xs = np.nonzero(erf >= 0.01 * erf.max()) if erf.max() > 0 \
            else (np.array([y]), np.array([x]))
        box = [min(c[0] for c in cells), min(c[1] for c in cells),
               max(c[2] for c in cells), max(c[3] for c in cells)]
        units.append(dict(
            pixel=[x, y], rf_unit=list(unit), erf_unit=list(erf_unit),
            rf_cells=cells, rf_num_positions=len(cells),
            rf_box=[float(v) for v in box],
            erf_box=[int(xs.min()), int(ys.min()), int(xs.max()) + 1,
                     int(ys.max()) + 1],
            erf=erf))
    return sample.image, units


def main(argv=None) -> dict:
    args = parse_args(argv)
    models = load_pad_and_baseline(args.config, args.checkpoint,
                                   args.baseline_config,
                                   args.baseline_checkpoint, args.device)
    model, cfg = models[0].model, models[0].cfg
    # call order of the PAD layers = module order for chains
    names = [n for n, _ in pad_layers(model)]
    if not names:
        raise ValueError(f'{args.config} has no PAD layer')
    layer = args.layer or names[-1]
    pixels = args.pixels or _default_pixels(model, cfg, args)
    rows, result = [], dict(image=args.image, layer=layer, pad_layers=names,
                            pixels=[list(p) for p in pixels], models=[])
    for label, m, c, config, ckpt in models:
        image, units = analyse(m, c, args.image, names, layer, pixels,
                               args.device)
        rows.append(dict(label=label, image=image, units=units))
        entry = dict(label=label, config=config, checkpoint=ckpt, units=[])
        for k, u in enumerate(units):
            name = f'erf_{label}_{k}.csv'
            write_csv(u['erf'], osp.join(args.out_dir, name))
            entry['units'].append(
                {key: v for key, v in u.items() if key != 'erf'} |
                dict(erf_csv=name))
        result['models'].append(entry)
    figure = render_receptive_fields(rows)
    png = save_png(figure, osp.join(args.out_dir, 'rf.png'))
    result['figure'] = 'rf.png'
    result['pad_conversion'] = pad_report(model)
    result['figure_size'] = list(figure.shape[:2])
    result['image_size'] = list(rows[0]['image'].shape[:2])
    write_json(result, osp.join(args.out_dir, 'rf.json'))
    print(f'wrote {png} and rf.json')
    return result


def _default_pixels(model, cfg, args):
    h, w = prepare_image(model, cfg, args.image, args.device).image.shape[:2]
    return [(w // 2, h // 2), (w // 4, h // 4), (3 * w // 4, 3 * h // 4)]


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
