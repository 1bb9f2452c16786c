"""PAD-Textures-Cls: the generated classification set of the
classification demo (pad_mm/datasets/textures_cls.py and its mmpretrain
dataset class)."""
import glob
import hashlib
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

import pad_mm.cls  # noqa: F401  (registers pad_mm for mmpretrain)
from pad_mm.apis.validate_data import check_loader
from pad_mm.datasets import (TEXTURE_CLASSES, TEXTURE_CLS_CLASSES,
                             ensure_textures_cls_dataset,
                             make_textures_cls_dataset,
                             render_textures_cls_sample,
                             render_textures_sample)
from pad_mm.models.pad_cfg import PADConfigError

GEN = dict(seed=3, num_train=60, num_val=20, size=32)


def _digest(root) -> dict:
    out = {}
    for p in sorted(glob.glob(osp.join(str(root), '*', '*', '*.png'))):
        with open(p, 'rb') as f:
            out[osp.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope='module')
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp('tcls') / 'set'
    make_textures_cls_dataset(str(root), **GEN)
    return root


def test_layout_and_meta(made):
    assert sorted(os.listdir(made)) == ['meta.json', 'train', 'val']
    for split, n in (('train', 60), ('val', 20)):
        assert sorted(os.listdir(made / split)) == list(TEXTURE_CLS_CLASSES)
        files = glob.glob(str(made / split / '*' / '*.png'))
        assert len(files) == n
        img = np.asarray(Image.open(files[0]))
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    meta = json.loads((made / 'meta.json').read_text())
    assert meta['classes'] == list(TEXTURE_CLS_CLASSES)
    assert sum(meta['counts']['train'].values()) == 60
    for cls, n in meta['counts']['val'].items():
        assert len(os.listdir(made / 'val' / cls)) == n
    # class names in index order are the sorted folder names
    assert TEXTURE_CLS_CLASSES == tuple(sorted(TEXTURE_CLASSES))


def test_deterministic_per_seed(made, tmp_path):
    again = tmp_path / 'again'
    make_textures_cls_dataset(str(again), **GEN)
    assert _digest(again) == _digest(made)
    other = tmp_path / 'other'
    make_textures_cls_dataset(str(other), **dict(GEN, seed=4))
    assert _digest(other) != _digest(made)


def test_label_is_the_texture_of_the_largest_share():
    """The same generator state drawn through the segmentation renderer:
    the label is the class with the largest pixel share (>= min_share);
    images below it are skipped, as the generator does."""
    rng_cls = np.random.default_rng(7)
    rng_seg = np.random.default_rng(7)
    redrawn = 0
    for _ in range(40):
        img, label = render_textures_cls_sample(rng_cls, 32, 3, 0.55)
        while True:
            ref, label_map = render_textures_sample(rng_seg, 32, 2, 3)
            share = np.bincount(label_map.ravel(), minlength=5) / 32**2
            if share.max() >= 0.55:
                break
            redrawn += 1
        np.testing.assert_array_equal(img, ref)
        assert TEXTURE_CLS_CLASSES[label] == TEXTURE_CLASSES[share.argmax()]
        # a second texture is in the image whenever two regions differ
        assert share.max() < 1 or len(np.unique(label_map)) == 1
    assert redrawn > 0  # the min_share rule did skip near ties


def test_not_solved_by_colour(made):
    """Nearest class mean of the image's mean colour (fitted on train)
    stays near chance on val; the class is in the texture, not the
    colour."""
    def feats(split):
        xs, ys = [], []
        for y, cls in enumerate(TEXTURE_CLS_CLASSES):
            for p in glob.glob(str(made / split / cls / '*.png')):
                xs.append(np.asarray(Image.open(p), np.float64).mean((0, 1)))
                ys.append(y)
        return np.array(xs), np.array(ys)
    xt, yt = feats('train')
    xv, yv = feats('val')
    means = np.stack([xt[yt == c].mean(0) for c in range(5)])
    pred = np.linalg.norm(xv[:, None] - means[None], axis=-1).argmin(1)
    assert (pred == yv).mean() <= 0.45  # chance 0.2, 20 val images


def test_ensure_regenerates_only_on_change(tmp_path):
    root = str(tmp_path / 'set')
    params = dict(seed=1, num_train=5, num_val=5, size=16)
    assert ensure_textures_cls_dataset(root, **params) is True
    before = _digest(root)
    assert ensure_textures_cls_dataset(root, **params) is False
    assert ensure_textures_cls_dataset(root, **dict(params, seed=2)) is True
    assert _digest(root) != before
    # the lock lives beside the set, not in it (CustomDataset reads it all)
    assert osp.isfile(tmp_path / '.set.lock')
    assert not glob.glob(osp.join(root, '.*'))


@pytest.mark.parametrize('key,value,match', [
    ('num_train', 0, 'num_train must be a positive int'),
    ('size', 8, 'size must be >= 16'),
    ('max_regions', 1, 'max_regions must be >= 2'),
    ('min_share', 0.5, r'min_share must be a number in \(0.5, 1\)'),
    ('seed', -1, 'seed must be an int >= 0'),
])
def test_bad_parameters_are_named(tmp_path, key, value, match):
    with pytest.raises(ValueError, match=match):
        ensure_textures_cls_dataset(str(tmp_path / 's'), **{key: value})
    assert not osp.exists(tmp_path / 's')


def test_unknown_parameter(tmp_path):
    with pytest.raises(TypeError, match=r"unknown generate key\(s\) "
                       r"\['sizes'\]; allowed: \["):
        ensure_textures_cls_dataset(str(tmp_path / 's'), sizes=32)


def _dataset(root, prefix, **kw):
    from mmpretrain.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    return DATASETS.build(dict(data_root=str(root), data_prefix=prefix,
                               pipeline=[], **kw))


def test_dataset_class_generates_on_first_use_and_matches_custom_dataset(
        tmp_path):
    root = tmp_path / 'data' / 'pad_textures_cls'
    gen = dict(seed=2, num_train=12, num_val=6, size=24)
    ours = _dataset(root, 'val', type='PADTexturesClsDataset', generate=gen)
    assert osp.isfile(root / 'meta.json')  # written by the dataset class
    assert len(ours) == 6
    assert ours.metainfo['classes'] == TEXTURE_CLS_CLASSES
    plain = _dataset(root, 'val', type='CustomDataset')
    assert plain.metainfo['classes'] == TEXTURE_CLS_CLASSES
    assert [(d['img_path'], d['gt_label']) for d in ours] == [
        (d['img_path'], d['gt_label']) for d in plain]
    for d in ours:
        cls = osp.basename(osp.dirname(d['img_path']))
        assert TEXTURE_CLS_CLASSES[d['gt_label']] == cls
    train = _dataset(root, 'train', type='PADTexturesClsDataset',
                     generate=gen)
    assert len(train) == 12


def test_preflight_checks_the_generate_keys(tmp_path):
    loader = dict(batch_size=2, num_workers=0, dataset=dict(
        type='PADTexturesClsDataset', data_root=str(tmp_path / 'absent'),
        data_prefix='train', generate=dict(seed=0, num_trian=10)))
    with pytest.raises(PADConfigError,
                       match=r'train_dataloader\.dataset\.generate\.'
                       r'num_trian.*unknown key'):
        check_loader('train_dataloader', loader)
    loader['dataset']['generate'] = dict(seed=0, num_train=10)
    check_loader('train_dataloader', loader)  # absent data_root is fine
    assert not osp.exists(tmp_path / 'absent')  # the check writes nothing
