"""The linear probe of the right dilation from a PAD layer's input
(pad_mm/evaluation/probe.py, tools/analysis_tools/prior_probe.py): it
finds information that is at the pixel, finds none where there is none,
sees pooled information only when pooling, and on a checkpoint reports
the layer's own choice on the same test half."""
from __future__ import annotations

import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from pad_mm.evaluation.probe import (fit_linear_probe, probe_checkpoint,
                                     probe_pad_layers)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
OPTIONS = (1, 2, 4)


def _truths(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """[n, size, size] right dilations in blocks of 8x8."""
    rng = np.random.default_rng(seed)
    blocks = rng.choice(OPTIONS, size=(n, size // 8, size // 8))
    return blocks.repeat(8, 1).repeat(8, 2)


def _onehot(truths: np.ndarray) -> torch.Tensor:
    idx = np.vectorize({d: i for i, d in enumerate(OPTIONS)}.get)(truths)
    return torch.nn.functional.one_hot(torch.as_tensor(idx), 3).permute(
        0, 3, 1, 2).float()


def test_fit_linear_probe_separable_and_random():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (600, ), generator=g)
    x = torch.nn.functional.one_hot(y, 3).float() + 0.1 * torch.randn(
        600, 3, generator=g)
    assert fit_linear_probe(x[:300], y[:300], x[300:], y[300:], 3) > 0.97
    noise = torch.randn(600, 8, generator=g)
    acc = fit_linear_probe(noise[:300], y[:300], noise[300:], y[300:], 3)
    major = (y[300:] == torch.bincount(y[:300]).argmax()).float().mean()
    assert acc < major + 0.08


def test_fit_linear_probe_shape_errors():
    with pytest.raises(ValueError, match='same C'):
        fit_linear_probe(torch.zeros(4, 2), torch.zeros(4).long(),
                         torch.zeros(4, 3), torch.zeros(4).long(), 2)
    with pytest.raises(ValueError, match='length'):
        fit_linear_probe(torch.zeros(4, 2), torch.zeros(3).long(),
                         torch.zeros(4, 2), torch.zeros(4).long(), 2)


def test_probe_sees_pixel_information_and_pooled_information():
    truths = _truths(16)
    g = torch.Generator().manual_seed(1)
    # at the output stride 4 grid (8x8 maps of 32x32 truths)
    grid = torch.as_tensor(truths[:, 2::4, 2::4])
    onehot = _onehot(grid.numpy())
    clear = onehot + 0.05 * torch.randn(onehot.shape, generator=g)
    # the truth shows at a pixel only in a random 25% of pixels, the rest
    # is noise: weak at the pixel, clear in a neighbourhood mean
    keep = (torch.rand(grid.shape, generator=g) < 0.25)[:, None]
    weak = onehot * keep + 0.3 * torch.randn(onehot.shape, generator=g)
    noise = torch.randn(16, 3, 8, 8, generator=g)
    res = probe_pad_layers(dict(clear=clear, weak=weak, noise=noise),
                           truths, OPTIONS, pool=1)
    const = res['clear']['const']
    assert res['clear']['probe'] > 0.97
    assert res['noise']['probe'] < const + 0.1
    assert res['noise']['probe_pool1'] < const + 0.1
    assert res['weak']['probe_pool1'] > res['weak']['probe'] + 0.1
    assert set(res['clear']) == {'probe', 'probe_pool1', 'const'}


def test_probe_pad_layers_errors():
    truths = _truths(4)
    with pytest.raises(ValueError, match='at least 2 images'):
        probe_pad_layers({}, truths[:1], OPTIONS)
    with pytest.raises(ValueError, match='3 images, the truths 4'):
        probe_pad_layers(dict(a=torch.zeros(3, 2, 8, 8)), truths, OPTIONS)
    with pytest.raises(ValueError, match=r'\[4\] are not among'):
        probe_pad_layers(dict(a=torch.zeros(4, 2, 8, 8)), truths, (1, 2))
    with pytest.raises(ValueError, match=r'num_fit .*\(1\.\.3\), got 4'):
        probe_pad_layers(dict(a=torch.zeros(4, 2, 8, 8)), truths, OPTIONS,
                         num_fit=4)


@pytest.fixture(scope='module')
def evidence_checkpoint(tmp_path_factory):
    """A PAD evidence model as constructed (hard choice d = 1 everywhere:
    the prior's initial margin) saved as a checkpoint, on a tiny set."""
    import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from pad_mm.datasets import make_evidence_dataset
    tmp = tmp_path_factory.mktemp('probe')
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs/demo/evidence/ablation/evidence_pad_markov.py'))
    gen = dict(cfg.val_dataloader.dataset.generate, num_train=4, num_val=5,
               seed=3)
    root = str(tmp / 'data')
    make_evidence_dataset(root, **gen)
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].dataset.data_root = root
        cfg[loader].dataset.generate = gen
    cfg_path = str(tmp / 'cfg.py')
    cfg.dump(cfg_path)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = str(tmp / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    return cfg_path, ckpt, root


def test_probe_checkpoint_reports_the_layers_choice(evidence_checkpoint):
    from pad_mm.evaluation.evidence import read_dilation_map, truth_on_grid
    cfg_path, ckpt, root = evidence_checkpoint
    res = probe_checkpoint(cfg_path, ckpt, num_images=4, pool=1, steps=20)
    names = ['backbone.convs.0.conv', 'backbone.convs.1.conv',
             'backbone.convs.2.conv']
    assert list(res) == names
    # as constructed every layer picks d = 1 (the initial margin): its
    # agreement on the scored images (the first 4 validation images; the
    # probe is fitted on 4 training images) is the share of d = 1 there
    truths = [truth_on_grid(read_dilation_map(
        osp.join(root, 'dilations', 'val', f'{i:06d}.png')), (32, 32))
        for i in range(4)]
    share1 = float(np.mean([(t == 1).mean() for t in truths]))
    for name in names:
        assert res[name]['agree'] == pytest.approx(share1)
        assert res[name]['agree_const'] >= res[name]['agree'] - 1e-9
        assert set(res[name]) == {'probe', 'probe_pool1', 'const', 'agree',
                                  'agree_const'}
        assert all(0.0 <= v <= 1.0 for v in res[name].values())
    # a model's plain convs can be probed too (what a prior would see)
    plain = probe_checkpoint(cfg_path, ckpt, num_images=4, pool=0, steps=5,
                             layers=['backbone.stem.conv'])
    assert list(plain) == ['backbone.stem.conv']
    assert set(plain['backbone.stem.conv']) == {'probe', 'const'}
    with pytest.raises(ValueError, match='no layer to probe'):
        probe_checkpoint(cfg_path, ckpt, num_images=4, layers=['nothing'])


def test_prior_probe_tool_prints_and_writes(evidence_checkpoint, tmp_path):
    cfg_path, ckpt, _ = evidence_checkpoint
    out = str(tmp_path / 'probe.json')
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools/analysis_tools/prior_probe.py'),
         cfg_path, ckpt, '--num-images', '4', '--pool', '0', '--out', out],
        capture_output=True, text=True, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('|')]
    assert lines[0] == ('| layer | probe (1x1) | most frequent d of the '
                        'fit images | layer\'s choice | best constant '
                        'choice |')
    assert len(lines) == 2 + 3
    saved = json.load(open(out))
    row = lines[2].split('|')
    assert float(row[2]) == pytest.approx(
        100 * saved['backbone.convs.0.conv']['probe'], abs=0.05)
    bad = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools/analysis_tools/prior_probe.py'),
         cfg_path, ckpt, '--pool', '-1'], capture_output=True, text=True)
    assert bad.returncode == 2 and '--pool must be >= 0, got -1' in bad.stderr
