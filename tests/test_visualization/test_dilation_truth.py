"""visualize_dilation.py with the right dilation of PAD-Evidence: the truth
column of the figure, the agreement of each PAD layer's choice in the JSON,
finding the truth beside the image, and the errors of a wrong truth."""
import json
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.apis import load_model
from pad_mm.datasets.evidence import make_evidence_dataset
from pad_mm.evaluation.evidence import (agreement_counts, read_dilation_map,
                                        summarize_agreement, truth_on_grid)
from pad_mm.models import pad_layers
from pad_mm.visualization import auto_truth_path, grid_size

from helpers.tools import load_tool

PAD_CFG = 'configs/demo/evidence/ablation/evidence_pad_markov.py'
SIZE = 64  # 64x64 images: the three PAD layers see 16x16 maps


def _png_size(path):
    img = cv2.imread(str(path))
    assert img is not None, path
    return img.shape[1], img.shape[0]


@pytest.fixture(scope='module')
def evidence(repo_root, tmp_path_factory):
    """A narrow evidence PAD model (8 channels, 64x64 input) with random
    priors, its checkpoint, and a PAD-Evidence set of two 64x64
    validation images."""
    root = tmp_path_factory.mktemp('vis_truth')
    cfg_path = root / 'pad_evidence_tiny.py'
    cfg_path.write_text(
        f"_base_ = ['{osp.join(repo_root, PAD_CFG)}']\n"
        f'model = dict(data_preprocessor=dict(size=({SIZE}, {SIZE})),\n'
        '             backbone=dict(channels=8),\n'
        '             decode_head=dict(in_channels=8, channels=8))\n')
    model, cfg = load_model(str(cfg_path))
    torch.manual_seed(0)
    for _, m in pad_layers(model):  # the layers choose differently
        nn.init.normal_(m.prior.input_weight, std=0.5)
        nn.init.zeros_(m.prior.input_bias)
    ckpt = str(root / 'pad.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    data = root / 'data'
    gen = dict(cfg.test_dataloader.dataset.generate, seed=1, num_train=1,
               num_val=2, size=SIZE)
    make_evidence_dataset(str(data), **gen)
    return dict(cfg=str(cfg_path), ckpt=ckpt, data=data, root=root)


def _run(repo_root, ev, image, out, *extra):
    tool = load_tool(repo_root, 'analysis_tools/visualize_dilation.py')
    return tool.main([ev['cfg'], ev['ckpt'], str(image), '--out-dir',
                      str(out), *extra])


def _check_agreement(out_dir, result, truth_file):
    """The JSON's agreement equals agreement_counts / summarize_agreement
    on the chosen maps the tool wrote, and a count by hand."""
    truth = read_dilation_map(truth_file)
    assert truth.shape == (SIZE, SIZE)
    for lay in result['layers']:
        chosen = np.loadtxt(osp.join(out_dir, lay['chosen_csv']),
                            delimiter=',').astype(np.int64)
        assert chosen.shape == (SIZE // 4, SIZE // 4)
        grid = truth_on_grid(truth, chosen.shape)
        counts = agreement_counts(chosen, grid)
        want = summarize_agreement(counts, lay['dilations'])
        got = dict(lay['truth_agreement'])
        assert got.pop('counts') == {str(t): list(c)
                                     for t, c in sorted(counts.items())}
        assert got == pytest.approx(want)
        # by hand: the share of grid pixels where chosen == truth
        assert got['agree'] == pytest.approx((chosen == grid).mean())
        for t in np.unique(grid):
            assert got[f'agree_d{t}'] == pytest.approx(
                (chosen[grid == t] == t).mean())
        shares = {o: (grid == o).mean() for o in lay['dilations']}
        assert got['agree_const'] == pytest.approx(max(shares.values()))
        assert shares[int(got['const_d'])] == max(shares.values())


def test_truth_found_beside_the_images_and_drawn(repo_root, evidence,
                                                 tmp_path):
    val = evidence['data'] / 'images' / 'val'
    res = _run(repo_root, evidence, val, tmp_path)  # a folder, no --truth
    assert len(res['images']) == 2
    agreements = set()
    for r in res['images']:
        name = osp.basename(r['image'])
        truth_file = str(evidence['data'] / 'dilations' / 'val' / name)
        assert r['truth'] == truth_file == auto_truth_path(r['image'])
        stem = osp.splitext(name)[0]
        data = json.loads((tmp_path / f'{stem}_dilation.json').read_text())
        assert data == json.loads(json.dumps(r))
        # image, right dilation, and three PAD layers
        assert _png_size(tmp_path / f'{stem}_dilation.png') == \
            grid_size(2, 5) == tuple(data['figure_size'][::-1])
        assert len(data['layers']) == 3
        _check_agreement(str(tmp_path), data, truth_file)
        agreements |= {lay['truth_agreement']['agree']
                       for lay in data['layers']}
    assert len(agreements) > 1  # the layers choose differently


def test_truth_given_or_absent(repo_root, evidence, tmp_path):
    # an image outside a PAD-Evidence tree has no truth unless given one
    plain = tmp_path / 'plain'
    plain.mkdir()
    image = plain / '000001.png'
    shutil.copy(evidence['data'] / 'images' / 'val' / '000001.png', image)
    assert auto_truth_path(str(image)) is None
    res = _run(repo_root, evidence, image, tmp_path / 'none')
    assert res['truth'] is None
    assert all('truth_agreement' not in lay for lay in res['layers'])
    assert _png_size(tmp_path / 'none' / '000001_dilation.png') == \
        grid_size(2, 4)
    # --truth: the folder of maps, then the file itself
    truth_dir = evidence['data'] / 'dilations' / 'val'
    for spec in (truth_dir, truth_dir / '000001.png'):
        out = tmp_path / spec.name
        res = _run(repo_root, evidence, image, out, '--truth', str(spec))
        assert res['truth'] == str(truth_dir / '000001.png')
        assert _png_size(out / '000001_dilation.png') == grid_size(2, 5)
        _check_agreement(str(out), res, res['truth'])


def test_truth_of_another_size_is_refused(repo_root, evidence, tmp_path):
    image = evidence['data'] / 'images' / 'val' / '000000.png'
    small = tmp_path / 'small.png'
    cv2.imwrite(str(small), np.ones((32, 48), np.uint8))
    with pytest.raises(ValueError, match=r'is 32x48, the image 64x64'):
        _run(repo_root, evidence, image, tmp_path / 'o', '--truth',
             str(small))
    assert not (tmp_path / 'o').exists()
    # a model input padded beyond the image: the maps would not line up
    padded = tmp_path / 'padded.py'
    padded.write_text(f"_base_ = ['{evidence['cfg']}']\n"
                      'model = dict(data_preprocessor=dict(\n'
                      '    test_cfg=dict(size=(96, 96))))\n')
    with pytest.raises(ValueError,
                       match=r'model input is 96x96, the image 64x64'):
        load_tool(repo_root, 'analysis_tools/visualize_dilation.py').main(
            [str(padded), evidence['ckpt'], str(image), '--out-dir',
             str(tmp_path / 'o')])


def test_truth_argument_errors(repo_root, evidence, tmp_path):
    val = evidence['data'] / 'images' / 'val'
    one = evidence['data'] / 'dilations' / 'val' / '000000.png'
    with pytest.raises(ValueError, match='one file for 2 images'):
        _run(repo_root, evidence, val, tmp_path, '--truth', str(one))
    with pytest.raises(FileNotFoundError, match='000001.png'):
        _run(repo_root, evidence, val, tmp_path, '--truth',
             str(evidence['data'] / 'annotations' / 'train'))
    with pytest.raises(FileNotFoundError, match='no such file or folder'):
        _run(repo_root, evidence, val, tmp_path, '--truth',
             str(tmp_path / 'absent'))


def test_auto_truth_path_keeps_a_relative_image_relative(tmp_path,
                                                         monkeypatch):
    for folder in ('images', 'dilations'):
        (tmp_path / 'set' / folder / 'val').mkdir(parents=True)
        (tmp_path / 'set' / folder / 'val' / '000000.png').write_bytes(b'')
    monkeypatch.chdir(tmp_path)
    rel = osp.join('set', 'images', 'val', '000000.png')
    assert auto_truth_path(rel) == osp.join('set', 'dilations', 'val',
                                            '000000.png')
    assert auto_truth_path(str(tmp_path / rel)) == str(
        tmp_path / 'set' / 'dilations' / 'val' / '000000.png')
    monkeypatch.chdir(tmp_path / 'set' / 'images')
    assert auto_truth_path(osp.join('val', '000000.png')) == osp.join(
        '..', 'dilations', 'val', '000000.png')
