"""Tiny classification data sets in the real on-disk layouts read by
mmpretrain's dataset classes (ImageNet, StanfordCars, FGVCAircraft)."""
import os
import os.path as osp

import numpy as np


def _write_images(paths, size=32, seed=0):
    import cv2
    rng = np.random.default_rng(seed)
    for p in paths:
        os.makedirs(osp.dirname(p), exist_ok=True)
        img = rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)
        assert cv2.imwrite(p, img)


def make_imagenet(root, labels_train=(0, 1, 2, 3), labels_val=(1, 3)):
    """ILSVRC-2012 layout: train/<wnid>/<wnid>_<n>.JPEG,
    val/ILSVRC2012_val_<n>.JPEG, meta/{train,val}.txt ("path label")."""
    wnids = ['n01440764', 'n01443537', 'n01484850', 'n01491361',
             'n01494475']
    train, val = [], []
    for i, y in enumerate(labels_train):
        train.append((f'{wnids[y]}/{wnids[y]}_{i + 1}.JPEG', y))
    for i, y in enumerate(labels_val):
        val.append((f'ILSVRC2012_val_{i + 1:08d}.JPEG', y))
    _write_images([osp.join(root, 'train', f) for f, _ in train], seed=1)
    _write_images([osp.join(root, 'val', f) for f, _ in val], seed=2)
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for split, items in (('train', train), ('val', val)):
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.writelines(f'{p} {y}\n' for p, y in items)
    return [y for _, y in val]


def _cars_mat(path, fnames, labels):
    """A devkit annotation file: a 1xN MATLAB struct array with the fields
    of cars_{train,test}_annos(_withlabels).mat (class is 1-based)."""
    from scipy.io import savemat
    fields = ('bbox_x1', 'bbox_y1', 'bbox_x2', 'bbox_y2', 'class', 'fname')
    arr = np.zeros((1, len(fnames)), dtype=[(f, 'O') for f in fields])
    for i, (fn, y) in enumerate(zip(fnames, labels)):
        arr[0, i] = (np.array([[1]], np.uint8), np.array([[2]], np.uint8),
                     np.array([[30]], np.uint8), np.array([[20]], np.uint8),
                     np.array([[y + 1]], np.uint8), np.array([fn]))
    os.makedirs(osp.dirname(path), exist_ok=True)
    savemat(path, {'annotations': arr})


def make_stanford_cars(root, labels_train=(0, 5, 7, 195),
                       labels_test=(5, 195)):
    """Stanford Cars devkit layout: cars_train/, cars_test/, devkit/
    cars_train_annos.mat and cars_test_annos_withlabels.mat."""
    for split, labels, mat in (
            ('train', labels_train, 'cars_train_annos.mat'),
            ('test', labels_test, 'cars_test_annos_withlabels.mat')):
        names = [f'{i + 1:05d}.jpg' for i in range(len(labels))]
        _write_images([osp.join(root, f'cars_{split}', n) for n in names],
                      seed=3)
        _cars_mat(osp.join(root, 'devkit', mat), names, labels)
    return list(labels_test)


def make_aircraft(root, labels_train=(0, 3, 50, 99), labels_test=(3, 99)):
    """FGVC-Aircraft 2013b layout: data/images/<id>.jpg,
    data/images_variant_{trainval,test}.txt ("<id> <variant>"),
    data/variants.txt."""
    from mmpretrain.datasets.categories import FGVCAIRCRAFT_CATEGORIES as V
    data = osp.join(root, 'data')
    os.makedirs(data, exist_ok=True)
    with open(osp.join(data, 'variants.txt'), 'w') as f:
        f.writelines(v + '\n' for v in V)
    for split, labels, start in (('trainval', labels_train, 1000000),
                                 ('test', labels_test, 2000000)):
        ids = [str(start + i) for i in range(len(labels))]
        _write_images([osp.join(data, 'images', i + '.jpg') for i in ids],
                      seed=4)
        with open(osp.join(data, f'images_variant_{split}.txt'), 'w') as f:
            f.writelines(f'{i} {V[y]}\n' for i, y in zip(ids, labels))
    return list(labels_test)
