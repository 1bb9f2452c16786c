"""Dilation maps of every PAD layer for images (paper Fig. 4).

    python tools/analysis_tools/visualize_dilation.py CONFIG CHECKPOINT IMAGE \
        --out-dir DIR

IMAGE is an image file, a folder (every .png/.jpg/.jpeg/.bmp/.tif/.tiff/
.webp in it, sorted) or a glob pattern in quotes ('data/val/*.png'); the
model is built once. Per image,
writes to DIR:
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
import os
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

from mmengine.config import DictAction  # noqa: E402

from pad_mm.apis import load_config, load_model, prepare_image  # noqa: E402
from pad_mm.models import pad_report  # noqa: E402
from pad_mm.utils.cli import add_model_args  # noqa: E402
from pad_mm.visualization import (dilation_panels,  # noqa: E402
                                  render_dilation_maps, safe_name, save_png,
                                  write_csv, write_json)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw the per-pixel dilation of every PAD layer')
    add_model_args(parser, image='image file, folder of images, or glob '
                   'pattern (quoted)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args(argv)


IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def image_paths(spec: str) -> list[str]:
    """The images named by a file, a folder or a glob pattern (sorted).

    Raises:
        FileNotFoundError: nothing matches; ValueError: two images share a
        file stem (their outputs would overwrite each other).
    """
    import glob
    if osp.isfile(spec):
        paths = [spec]
    elif osp.isdir(spec):
        paths = sorted(osp.join(spec, f) for f in os.listdir(spec)
                       if f.lower().endswith(IMAGE_SUFFIXES))
    else:
        paths = sorted(p for p in glob.glob(spec, recursive=True)
                       if osp.isfile(p) and p.lower().endswith(IMAGE_SUFFIXES))
    if not paths:
        raise FileNotFoundError(
            f'image={spec!r}: no image there; allowed: an image file, a '
            f'folder of {"/".join(IMAGE_SUFFIXES)} files, or a glob pattern')
    stems = [osp.splitext(osp.basename(p))[0] for p in paths]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise ValueError(f'image={spec!r}: several images named {dup}; '
                         'their outputs would overwrite each other')
    return paths


def main(argv=None) -> dict:
    """One image: its result dict; several: ``{'images': [results]}``."""
    args = parse_args(argv)
    paths = image_paths(args.image)
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model, cfg = load_model(cfg, args.checkpoint, args.device)
    results = [_one_image(model, cfg, path, args) for path in paths]
    return results[0] if len(results) == 1 else dict(images=results)


def _one_image(model, cfg, image: str, args) -> dict:
    sample = prepare_image(model, cfg, image, args.device)
    panels, stats = dilation_panels(model, sample.inputs)
    if not panels:
        raise ValueError(f'no PAD layer ran on {image}')
    stem = osp.splitext(osp.basename(image))[0]
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
        config=args.config, checkpoint=args.checkpoint, image=image,
        image_size=list(sample.image.shape[:2]),
        figure=osp.basename(png), figure_size=list(figure.shape[:2]),
        mean_dilation=stats['all']['mean'], var_dilation=stats['all']['var'],
        layers=layers, pad_conversion=pad_report(model))
    write_json(result, osp.join(args.out_dir, f'{stem}_dilation.json'))
    print(f'wrote {png} and {stem}_dilation.json ({len(layers)} PAD layers, '
          f'sigma^2(d) = {stats["all"]["var"]:.4g})')
    return result


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
