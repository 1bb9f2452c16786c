"""benchmark_pad.py --index-source: parsing and the blob maps (no timing)."""
import os.path as osp

import pytest
import torch

from helpers.tools import load_tool

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _bench():
    return load_tool(ROOT, 'analysis_tools/benchmark_pad.py')


def test_parse_index_source(tmp_path):
    b = _bench()
    assert b.parse_index_source('random') == ('random', )
    assert b.parse_index_source('blobs:0.1') == ('blobs', 0.1)
    cfg, ckpt = tmp_path / 'c.py', tmp_path / 'k.pth'
    cfg.write_text('x = 1\n')
    ckpt.write_bytes(b'')
    assert b.parse_index_source(f'checkpoint:{cfg}:{ckpt}') == (
        'checkpoint', str(cfg), str(ckpt))
    with pytest.raises(ValueError, match='0 <= FRAC < 1'):
        b.parse_index_source('blobs:1.5')
    with pytest.raises(ValueError, match='0 <= FRAC < 1'):
        b.parse_index_source('blobs:abc')
    with pytest.raises(ValueError, match='does not exist'):
        b.parse_index_source(f'checkpoint:{cfg}:{tmp_path / "nope.pth"}')
    with pytest.raises(ValueError, match="must be 'random'"):
        b.parse_index_source('uniform')
    with pytest.raises(SystemExit):
        b.parse_args(['--index-source', 'blobs:2'])


@pytest.mark.parametrize('frac', [0.0, 0.1, 0.3])
def test_blob_index_covers_the_share(frac):
    b = _bench()
    g = torch.Generator().manual_seed(0)
    index = b.blob_index(3, 32, 64, 3, frac, g)
    assert index.shape == (3, 32, 64) and index.dtype == torch.long
    for img in index:
        share = (img != 0).float().mean().item()
        # two discs: at least the share, at most one ring of pixels more
        assert frac <= share <= frac + 0.03
        if frac:
            assert set(img.unique().tolist()) == {0, 1, 2}
