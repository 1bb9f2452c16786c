"""Tiny segmentation data sets in the real on-disk layouts, and a config
shrinker, for the model-zoo tests (tests/test_seg_zoo.py).

``make_voc(root)`` writes PASCAL VOC 2012 + SBD as mmseg's voc12aug configs
read it::

    root/JPEGImages/<id>.jpg
    root/SegmentationClass/<id>.png        palette PNG, 0..20 + 255 borders
    root/SegmentationClassAug/<id>.png     grey PNG (SBD converted), 0..20
    root/ImageSets/Segmentation/{train,val,aug}.txt

``make_cityscapes(root)`` writes::

    root/leftImg8bit/{train,val}/<city>/<city>_000000_0000NN_leftImg8bit.png
    root/gtFine/{train,val}/<city>/
        <city>_000000_0000NN_gtFine_labelTrainIds.png
"""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
from PIL import Image

VOC_CLASSES = 21
CITYSCAPES_CLASSES = 19


def _label_map(rng: np.random.Generator, h: int, w: int, num_classes: int,
               border: bool) -> np.ndarray:
    """Background with a few class rectangles (+ 255 outlines as VOC)."""
    lab = np.zeros((h, w), np.uint8)
    for _ in range(3):
        c = int(rng.integers(1, num_classes))
        y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        y1, x1 = y0 + int(rng.integers(4, h // 2 + 1)), \
            x0 + int(rng.integers(4, w // 2 + 1))
        lab[y0:y1, x0:x1] = c
        if border:
            lab[y0, x0:x1] = lab[min(y1, h) - 1, x0:x1] = 255
    return lab


def _image_for(rng: np.random.Generator, lab: np.ndarray) -> np.ndarray:
    """An RGB image whose colours depend on the labels (learnable)."""
    colours = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    img = colours[lab].astype(np.int16)
    img += rng.integers(-20, 21, img.shape, dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def _voc_palette() -> list[int]:
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def make_voc(root: str, num_train: int = 2, num_val: int = 2,
             num_aug: int = 2, seed: int = 0,
             sizes: tuple[tuple[int, int], ...] = ((40, 52), (37, 45))
             ) -> str:
    """VOC 2012 + SBD layout under ``root`` (the ``VOC2012`` folder).
    Image sizes cycle through ``sizes`` (H, W). Returns ``root``."""
    rng = np.random.default_rng(seed)
    for d in ('JPEGImages', 'SegmentationClass', 'SegmentationClassAug',
              'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, d), exist_ok=True)
    palette = _voc_palette()
    splits = {'train': num_train, 'val': num_val, 'aug': num_aug}
    k = 0
    for split, n in splits.items():
        ids = []
        for _ in range(n):
            h, w = sizes[k % len(sizes)]
            name = f'2007_{k:06d}'
            k += 1
            lab = _label_map(rng, h, w, VOC_CLASSES, border=split != 'aug')
            Image.fromarray(_image_for(rng, lab)).save(
                osp.join(root, 'JPEGImages', name + '.jpg'), quality=95)
            if split == 'aug':  # SBD converted by mmseg: grey index PNG
                Image.fromarray(lab, mode='L').save(
                    osp.join(root, 'SegmentationClassAug', name + '.png'))
            else:
                p = Image.fromarray(lab, mode='P')
                p.putpalette(palette)
                p.save(osp.join(root, 'SegmentationClass', name + '.png'))
            ids.append(name)
        with open(osp.join(root, 'ImageSets/Segmentation', f'{split}.txt'),
                  'w') as f:
            f.write('\n'.join(ids) + '\n')
    return root


def make_cityscapes(root: str, num_train: int = 2, num_val: int = 2,
                    seed: int = 0, size: tuple[int, int] = (32, 64)) -> str:
    """Cityscapes layout (leftImg8bit + gtFine labelTrainIds) under
    ``root``. Returns ``root``."""
    rng = np.random.default_rng(seed)
    h, w = size
    for split, n, city in (('train', num_train, 'aachen'),
                           ('val', num_val, 'frankfurt')):
        img_dir = osp.join(root, 'leftImg8bit', split, city)
        ann_dir = osp.join(root, 'gtFine', split, city)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(n):
            stem = f'{city}_000000_{i:06d}'
            lab = _label_map(rng, h, w, CITYSCAPES_CLASSES, border=True)
            Image.fromarray(_image_for(rng, lab)).save(
                osp.join(img_dir, stem + '_leftImg8bit.png'))
            Image.fromarray(lab, mode='L').save(
                osp.join(ann_dir, stem + '_gtFine_labelTrainIds.png'))
    return root


# -- config shrinking -------------------------------------------------------
def _shrink_pipeline(pipeline: list, crop: tuple[int, int]) -> None:
    h, w = crop
    for t in pipeline:
        kind = t.get('type')
        if kind == 'RandomResize':
            t['scale'] = (2 * w, h)
        elif kind == 'Resize' and 'scale' in t:
            t['scale'] = (2 * w, h)
        elif kind == 'RandomCrop':
            t['crop_size'] = (h, w)
        elif kind == 'Pad' and 'size' in t:
            t['size'] = (h, w)


def _datasets(dataset: dict) -> list[dict]:
    if dataset.get('type') == 'ConcatDataset':
        return [d for sub in dataset['datasets'] for d in _datasets(sub)]
    return [dataset]


def shrink_seg_cfg(cfg, data_root: str, work_dir: str,
                   crop: tuple[int, int] = (32, 32), max_iters: int = 2):
    """Point a segmentation config at a tiny data set and shrink it: crop
    and resize scales, ``max_iters`` training iterations and one validation
    at the end, no pretrained weights, no workers. Batch sizes and every
    model setting stay those of the config."""
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg[loader]
        dl.num_workers = 0
        dl.persistent_workers = False
        for ds in _datasets(dl.dataset):
            ds['data_root'] = data_root
            _shrink_pipeline(ds['pipeline'], crop)
    dp = cfg.model.get('data_preprocessor')
    if dp is not None and dp.get('size') is not None:
        dp['size'] = crop
    cfg.model.backbone.init_cfg = None
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters
    for sched in cfg.param_scheduler:
        sched['end'] = max_iters
    for hook in cfg.get('custom_hooks', []):
        if hook.get('type') == 'PADTauHook':
            hook['anneal_iters'] = max_iters
    # no checkpoint files (seconds each for the big models)
    cfg.default_hooks.checkpoint.interval = max_iters + 1
    cfg.default_hooks.checkpoint.save_last = False
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook',
                                           draw=False)
    cfg.env_cfg.cudnn_benchmark = False
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    return cfg
