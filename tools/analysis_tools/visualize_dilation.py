"""Dilation maps of every PAD layer for one image (paper Fig. 4).

    python tools/analysis_tools/visualize_dilation.py CONFIG CHECKPOINT IMAGE \
        --out-dir DIR

Writes to DIR:
  <image>_dilation.png   the image, then per PAD layer (call order) the
                         expected dilation E[d] = sum_k softmax(h)_k d_k per
                         pixel (top) and the chosen = argmax dilation
                         (bottom), one colour scale and colour bar;
  <image>_dilation.json  the numbers: per layer the options, map size,
                         mean E[d], sigma^2(d), spatial variance, chosen-
                         dilation histogram, and the CSV file names;
  <image>_<layer>_expected.csv / _chosen.csv   the maps.
Works for segmentation (mmseg) and classification (mmpretrain) configs.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from mmengine.config import DictAction  # noqa: E402

from pad_mm.apis import load_config, load_model, prepare_image  # noqa: E402
from pad_mm.models import pad_report  # noqa: E402
from pad_mm.visualization import (dilation_panels,  # noqa: E402
                                  render_dilation_maps, safe_name, save_png,
                                  write_csv, write_json)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw the per-pixel dilation of every PAD layer')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('image', help='image file')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model, cfg = load_model(cfg, args.checkpoint, args.device)
    sample = prepare_image(model, cfg, args.image, args.device)
    panels, stats = dilation_panels(model, sample.inputs)
    if not panels:
        raise ValueError('no PAD layer ran on this image')
    stem = osp.splitext(osp.basename(args.image))[0]
    figure = render_dilation_maps(sample.image, panels, title=stem)
    png = save_png(figure, osp.join(args.out_dir, f'{stem}_dilation.png'))
    layers = []
    for p in panels:
        base = f'{stem}_{safe_name(p["name"])}'
        write_csv(p['expected'],
                  osp.join(args.out_dir, f'{base}_expected.csv'))
        write_csv(p['chosen'], osp.join(args.out_dir, f'{base}_chosen.csv'),
                  fmt='%d')
        s = stats[p['name']]
        layers.append(dict(
            name=p['name'], dilations=p['dilations'],
            map_size=list(p['expected'].shape), mean_dilation=s['mean'],
            var_dilation=s['var'], spatial_var=s['spatial_var'],
            chosen_mean=s['chosen_mean'],
            chosen_hist=dict(zip(map(str, p['dilations']), s['hist'])),
            expected_csv=f'{base}_expected.csv',
            chosen_csv=f'{base}_chosen.csv'))
    result = dict(
        config=args.config, checkpoint=args.checkpoint, image=args.image,
        image_size=list(sample.image.shape[:2]),
        figure=osp.basename(png), figure_size=list(figure.shape[:2]),
        mean_dilation=stats['all']['mean'], var_dilation=stats['all']['var'],
        layers=layers, pad_conversion=pad_report(model))
    write_json(result, osp.join(args.out_dir, f'{stem}_dilation.json'))
    print(f'wrote {png} and {stem}_dilation.json ({len(layers)} PAD layers, '
          f'sigma^2(d) = {stats["all"]["var"]:.4g})')
    return result


if __name__ == '__main__':
    main()
