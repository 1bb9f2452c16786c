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

With the image's right dilation per pixel (PAD-Evidence, see --truth), the
picture gets a "right dilation" column after the image (top: the truth at
the image's resolution; bottom: at the centres of the first PAD layer's
grid; the chosen panels' colour scale), each chosen panel's title the
layer's agreement with it, and the JSON ``truth`` (the map's path) and,
per layer, ``truth_agreement``: the share of the layer's grid pixels whose
chosen dilation is the right one, overall (``agree``) and per true
dilation t (``agree_d<t>``), the best constant choice's share
(``agree_const``, option ``const_d``) and the pixel ``counts``.
"""
import argparse
import os
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

from mmengine.config import DictAction  # noqa: E402
from PIL import Image  # noqa: E402

from pad_mm.apis import load_config, load_model, prepare_image  # noqa: E402
from pad_mm.models import pad_report  # noqa: E402
from pad_mm.utils.cli import add_model_args  # noqa: E402
from pad_mm.visualization import (dilation_panels,  # noqa: E402
                                  layer_agreement, load_truth,
                                  render_dilation_maps, safe_name, save_png,
                                  truth_path, write_csv, write_json)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw the per-pixel dilation of every PAD layer')
    add_model_args(parser, image='image file, folder of images, or glob '
                   'pattern (quoted)')
    parser.add_argument(
        '--truth', metavar='DIR_OR_FILE',
        help='right-dilation maps (PNG of dilation values, the size of the '
        'image) to compare each PAD layer\'s choice with: a folder holding '
        'one of the same file name per image, or, for one image, the file. '
        'Without it, an image at <root>/images/<split>/NAME (a PAD-Evidence '
        'set) is compared with <root>/dilations/<split>/NAME when that file '
        'exists, and other images with nothing')
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
    truths = [truth_path(p, args.truth, len(paths)) for p in paths]
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model, cfg = load_model(cfg, args.checkpoint, args.device)
    results = [_one_image(model, cfg, path, truth, args)
               for path, truth in zip(paths, truths)]
    return results[0] if len(results) == 1 else dict(images=results)


def _one_image(model, cfg, image: str, truth_file: str | None,
               args) -> dict:
    sample = prepare_image(model, cfg, image, args.device)
    panels, stats = dilation_panels(model, sample.inputs)
    if not panels:
        raise ValueError(f'no PAD layer ran on {image}')
    truth = None
    if truth_file is not None:
        with Image.open(image) as im:
            original = (im.height, im.width)
        truth = load_truth(truth_file, sample.image.shape[:2], original,
                           input_size=sample.inputs.shape[-2:])
        for p in panels:
            p['agreement'] = layer_agreement(p['chosen'], truth,
                                             p['dilations'])
    stem = osp.splitext(osp.basename(image))[0]
    figure = render_dilation_maps(sample.image, panels, title=stem,
                                  truth=truth)
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
        if truth is not None:
            layers[-1]['truth_agreement'] = p['agreement']
    result = dict(
        config=args.config, checkpoint=args.checkpoint, image=image,
        truth=truth_file,
        image_size=list(sample.image.shape[:2]),
        figure=osp.basename(png), figure_size=list(figure.shape[:2]),
        mean_dilation=stats['all']['mean'], var_dilation=stats['all']['var'],
        layers=layers, pad_conversion=pad_report(model))
    write_json(result, osp.join(args.out_dir, f'{stem}_dilation.json'))
    print(f'wrote {png} and {stem}_dilation.json ({len(layers)} PAD layers, '
          f'sigma^2(d) = {stats["all"]["var"]:.4g})')
    if truth is not None:
        for p in panels:
            a = p['agreement']
            print(f'  {p["name"]}: agrees with {truth_file} on '
                  f'{a["agree"]:.1%} of its pixels (best constant choice, '
                  f'd={a["const_d"]:g}: {a["agree_const"]:.1%})')
    return result


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
