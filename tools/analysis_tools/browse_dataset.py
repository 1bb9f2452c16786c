"""Draw the images of a segmentation data set with their ground truth.

    python tools/analysis_tools/browse_dataset.py CONFIG --output-dir DIR \
        [--split train|val|test] [--max-images N] [--cfg-options ...]

Runs the split's pipeline (augmentations included) and saves each image
with its label map drawn over it by the config's visualizer
(``SegLocalVisualizer``) as DIR/<image name>. mmseg 1.2.2's own
``tools/analysis_tools/browse_dataset.py`` crashes on every config
(mmseg#3405: it hands OpenCV a non-contiguous image view, "Layout of the
output array img is incompatible with cv::Mat"); this tool passes a
contiguous copy.
"""
import argparse
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from pad_mm.apis import load_config  # noqa: E402
from pad_mm.registry import task_of  # noqa: E402
from pad_mm.apis.validate import PADConfigError  # noqa: E402
from pad_mm.utils import run_tool  # noqa: E402

SPLITS = ('train', 'val', 'test')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw a segmentation data set with its ground truth')
    parser.add_argument('config', help='config file')
    parser.add_argument('--output-dir', required=True,
                        help='folder for the drawn images')
    parser.add_argument('--split', default='train', choices=SPLITS,
                        help='which data loader\'s data set (default train)')
    parser.add_argument('--max-images', type=int,
                        help='draw only the first N samples')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of a config error')
    return parser.parse_args(argv)


def main(argv=None) -> list[str]:
    """Returns the written files."""
    args = parse_args(argv)
    cfg = load_config(args.config)  # pad_mm registered for its task
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if task_of(cfg) != 'seg':
        raise PADConfigError('default_scope', cfg.default_scope,
                             "'mmseg' (segmentation data sets only)")
    if args.max_images is not None and args.max_images < 1:
        raise PADConfigError('--max-images', args.max_images,
                             'a positive int')
    init_default_scope('mmseg')
    from mmseg.registry import DATASETS, VISUALIZERS
    dataset = DATASETS.build(cfg[f'{args.split}_dataloader'].dataset)
    vis_cfg = dict(cfg.visualizer)
    vis_cfg['name'] = f'browse_dataset_{id(dataset)}'
    visualizer = VISUALIZERS.build(vis_cfg)
    visualizer.dataset_meta = dataset.metainfo
    count = len(dataset) if args.max_images is None else min(
        args.max_images, len(dataset))
    written = []
    for i in range(count):
        item = dataset[i]
        # BGR tensor [3, H, W] -> contiguous RGB [H, W, 3] (mmseg#3405)
        img = np.ascontiguousarray(
            item['inputs'].permute(1, 2, 0).numpy()[..., ::-1])
        sample = item['data_samples'].numpy()
        out_file = osp.join(args.output_dir, osp.basename(sample.img_path))
        visualizer.add_datasample(
            name=osp.basename(sample.img_path), image=img,
            data_sample=sample, draw_gt=True, draw_pred=False, show=False,
            out_file=out_file)
        written.append(out_file)
    print(f'wrote {len(written)} images to {args.output_dir}')
    return written


if __name__ == '__main__':
    run_tool(main)
