"""PAD-Evidence (pad_mm.datasets.evidence): the generated set whose right
dilation is known per pixel. Format, determinism, the scale/dilation tie
of the textures, and the mmseg dataset class."""
from __future__ import annotations

import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from pad_mm.datasets import (EVIDENCE_CLASSES, PADEvidenceDataset,
                             ensure_evidence_dataset, evidence_period,
                             make_evidence_dataset, render_evidence_sample)

SMALL = dict(seed=2, num_train=6, num_val=3, size=64)


def _files(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            with open(osp.join(dirpath, n), 'rb') as f:
                out[osp.relpath(osp.join(dirpath, n), root)] = f.read()
    return out


def test_on_disk_layout_and_values(tmp_path):
    root = make_evidence_dataset(str(tmp_path / 'ev'), **SMALL)
    for split, n in (('train', 6), ('val', 3)):
        for kind in ('images', 'annotations', 'dilations'):
            names = sorted(os.listdir(osp.join(root, kind, split)))
            assert names == [f'{i:06d}.png' for i in range(n)]
        img = Image.open(osp.join(root, 'images', split, '000000.png'))
        assert img.mode == 'RGB' and img.size == (64, 64)
        lab = np.array(Image.open(osp.join(root, 'annotations', split,
                                           '000000.png')))
        dil = np.array(Image.open(osp.join(root, 'dilations', split,
                                           '000000.png')))
        assert lab.dtype == dil.dtype == np.uint8
        assert lab.shape == dil.shape == (64, 64)
        assert set(np.unique(lab)) <= set(range(len(EVIDENCE_CLASSES)))
        assert set(np.unique(dil)) <= {1, 2, 4}
    with open(osp.join(root, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['dilations'] == [1, 2, 4] and meta['stride'] == 4
    assert meta['classes'] == list(EVIDENCE_CLASSES)


def test_generation_is_deterministic_and_seeded(tmp_path):
    a = _files(make_evidence_dataset(str(tmp_path / 'a'), **SMALL))
    b = _files(make_evidence_dataset(str(tmp_path / 'b'), **SMALL))
    c = _files(make_evidence_dataset(str(tmp_path / 'c'),
                                     **dict(SMALL, seed=3)))
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_every_image_holds_every_scale():
    rng = np.random.default_rng(0)
    for _ in range(20):
        _, _, dil = render_evidence_sample(rng, size=128, min_regions=3,
                                           max_regions=6)
        assert set(np.unique(dil)) == {1, 2, 4}


def test_class_and_scale_are_independent():
    # over many regions every (class, scale) pair occurs, at about the
    # product of the marginal frequencies
    rng = np.random.default_rng(1)
    joint = np.zeros((len(EVIDENCE_CLASSES), 3))
    for _ in range(150):
        _, lab, dil = render_evidence_sample(rng, size=64)
        pairs = np.unique(np.stack([lab.ravel(), dil.ravel()]), axis=1)
        for c, d in pairs.T:
            joint[c, {1: 0, 2: 1, 4: 2}[int(d)]] += 1
    p = joint / joint.sum()
    expected = p.sum(1, keepdims=True) * p.sum(0, keepdims=True)
    assert (joint > 0).all()
    assert np.abs(p - expected).max() < 0.03


def _blobs(img):
    """Blob mask of a noise-free one-region image: the minority colour."""
    grey = img.astype(np.int64).sum(-1)
    values, counts = np.unique(grey, return_counts=True)
    assert len(values) == 2
    return grey == values[counts.argmin()]


def _partner_share(b, dy, dx, s):
    """Share of blob pixels with a blob pixel s pixels away along (dy, dx)
    in one of the two senses."""
    pad = np.pad(b, s)
    n = b.shape[0]
    fwd = pad[s + dy * s:s + dy * s + n, s + dx * s:s + dx * s + n]
    bwd = pad[s - dy * s:s - dy * s + n, s - dx * s:s - dx * s + n]
    return (fwd | bwd)[b].mean()


@pytest.mark.parametrize('cls', range(len(EVIDENCE_CLASSES)))
def test_dimer_partner_lies_d_map_pixels_away_along_the_class(cls):
    # one-region noise-free images: (nearly) every blob pixel has its
    # partner exactly stride * d pixels away along the class's direction
    # (not all: partners cut off by the image border); at lags of d map
    # pixels or more in other directions, or 2d and 4d along it, only the
    # lattice's chance recurrences
    from pad_mm.datasets.evidence import PAIR_DIRECTIONS
    rng = np.random.default_rng(10 + cls)
    right, wrong = [], []
    for _ in range(60):
        img, lab, dil = render_evidence_sample(
            rng, size=128, min_regions=1, max_regions=1, noise=0.0)
        if lab[0, 0] != cls:
            continue
        d = int(dil[0, 0])
        b = _blobs(img)
        for (dy, dx) in PAIR_DIRECTIONS:
            for k in (d, 2 * d, 4 * d):
                share = _partner_share(b, dy, dx, 4 * k)
                if (dy, dx) == PAIR_DIRECTIONS[cls] and k == d:
                    right.append(share)
                else:
                    wrong.append(share)
    assert right, 'no region of this class drawn'
    assert np.mean(right) > 0.85 and min(right) > 0.7
    assert max(wrong) < 0.65


def test_period_ties_scale_to_dilation_and_stride():
    assert [evidence_period(d, 4) for d in (1, 2, 4)] == [8, 16, 32]


@pytest.mark.parametrize('bad, field', [
    (dict(size=130), 'size'),
    (dict(size=16), 'size'),
    (dict(stride=0), 'stride'),
    (dict(dilations=[1, 1]), 'dilations'),
    (dict(min_regions=5, max_regions=2), 'min_regions'),
    (dict(noise=-1.0), 'noise'),
    (dict(texture='dots'), 'texture'),
])
def test_bad_parameters_name_the_field(bad, field):
    with pytest.raises(ValueError, match=field):
        render_evidence_sample(np.random.default_rng(0),
                               **dict(dict(size=128), **bad))


def test_unknown_parameter_is_refused(tmp_path):
    with pytest.raises(ValueError, match='colour'):
        make_evidence_dataset(str(tmp_path / 'x'), colour=3)


def test_ensure_regenerates_only_on_other_parameters(tmp_path):
    root = str(tmp_path / 'ev')
    assert ensure_evidence_dataset(root, **SMALL) is True
    assert ensure_evidence_dataset(root, **SMALL) is False
    assert ensure_evidence_dataset(root, **dict(SMALL, noise=0.0)) is True
    with open(osp.join(root, 'meta.json')) as f:
        assert json.load(f)['noise'] == 0.0


def test_dataset_class_reads_the_dilation_maps(tmp_path):
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    root = str(tmp_path / 'ev')
    ds = PADEvidenceDataset(
        data_root=root, generate=SMALL,
        data_prefix=dict(img_path='images/val',
                         seg_map_path='annotations/val',
                         dil_map_path='dilations/val'),
        pipeline=[])
    assert len(ds) == 3
    info = ds.get_data_info(1)
    assert info['dil_map_path'] == osp.join(root, 'dilations', 'val',
                                            '000001.png')
    assert osp.isfile(info['dil_map_path'])
    assert ds.metainfo['classes'] == EVIDENCE_CLASSES


def test_dataset_class_needs_the_dilation_folder(tmp_path):
    with pytest.raises(ValueError, match='dil_map_path'):
        PADEvidenceDataset(
            data_root=str(tmp_path / 'ev'), generate=SMALL,
            data_prefix=dict(img_path='images/val',
                             seg_map_path='annotations/val'),
            pipeline=[])


def _lag_equality(grid: np.ndarray, dy: int, dx: int, lag: int) -> float:
    """Share of cells equal to the cell ``lag`` steps along (dy, dx)."""
    n = grid.shape[0]
    a = grid[max(0, -dy * lag):n - max(0, dy * lag),
             max(0, -dx * lag):n - max(0, dx * lag)]
    b = grid[max(0, dy * lag):n - max(0, -dy * lag) or None,
             max(0, dx * lag):n - max(0, -dx * lag) or None]
    return float((a == b).mean())


def test_aligned_pairs_are_one_cell_per_patch_and_equal_only_at_lag_d():
    # the evidence configs' texture: cells (and regions) on the 4x4 patch
    # grid; along the class direction a cell equals the one d cells away
    # with probability 3/4, at lags d/2 and 2d (and across) with 1/2
    from pad_mm.datasets.evidence import PAIR_DIRECTIONS
    rng = np.random.default_rng(5)
    right, other = [], []
    for _ in range(24):
        img, lab, dil = render_evidence_sample(
            rng, size=128, min_regions=1, max_regions=1, noise=0.0,
            texture='pairs', align_cells=True)
        cells = img.reshape(32, 4, 32, 4, 3)
        assert (cells == cells[:, :1, :, :1]).all()
        grid = cells[:, 0, :, 0, 0].astype(int)
        cls, d = int(lab[0, 0]), int(dil[0, 0])
        for k, (dy, dx) in enumerate(PAIR_DIRECTIONS):
            for lag in {d, 2 * d, max(1, d // 2)}:
                eq = _lag_equality(grid, dy, dx, lag)
                (right if (k == cls and lag == d) else other).append(eq)
    assert np.mean(right) > 0.7 and min(right) > 0.62
    assert max(other) < 0.6
    # regions are unions of cells too
    _, lab, _ = render_evidence_sample(rng, size=128, texture='pairs',
                                       align_cells=True)
    blocks = lab.reshape(32, 4, 32, 4)
    assert (blocks == blocks[:, :1, :, :1]).all()


def test_scale_cue_marks_each_scale_in_one_channel_and_keeps_the_stream():
    rng = np.random.default_rng(7)
    img, lab, dil = render_evidence_sample(
        rng, size=128, noise=0.0, texture='pairs', align_cells=True,
        scale_cue=True)
    for channel, d in enumerate((1, 2, 4)):
        if (dil == d).any():
            assert (img[dil == d][:, channel] == 255).all()
    # the same draws: labels and right dilations are those without the cue
    _, lab0, dil0 = render_evidence_sample(
        np.random.default_rng(7), size=128, noise=0.0, texture='pairs',
        align_cells=True)
    assert (lab == lab0).all() and (dil == dil0).all()


@pytest.mark.parametrize('bad, message', [
    (dict(align_cells=1), 'align_cells must be a bool'),
    (dict(scale_cue='yes'), 'scale_cue must be a bool'),
    (dict(align_cells=True, texture='dimers'), "applies to texture='pairs'"),
    (dict(scale_cue=True, dilations=[1, 2, 3, 4]), 'at most 3 dilations'),
])
def test_bad_texture_options_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        render_evidence_sample(np.random.default_rng(0),
                               **dict(dict(size=128, texture='pairs'), **bad))
