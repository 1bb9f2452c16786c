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


def test_differing_gemm_is_the_sparse_strategys_gemm_alone():
    """The floor candidate: one packed linear of the M differing pixels'
    (seeded random) taps; None where the sparse GEMM is not oneDNN's."""
    from pad_mm.ops.impls.hard_im2col import packed_gemm_ok
    from pad_mm.ops.impls.taps import gemm_matrix
    b = _bench()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 9, 10, generator=g)
    w, bias = torch.randn(6, 8, 3, 3, generator=g), torch.randn(6)
    index = torch.zeros(2, 9, 10, dtype=torch.long)
    index[0, 2:4, 3:6] = 1  # 6 differing pixels
    index[1, 0, 0] = 2  # and one more
    fn = b.differing_gemm(x, w, bias, index, 0)
    if not packed_gemm_ok():
        assert fn is None
        return
    taps = torch.randn(7, 8 * 9, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        fn(), torch.nn.functional.linear(taps, gemm_matrix(w), bias),
        rtol=1e-4, atol=1e-4)
    assert b.differing_gemm(x, w, bias, torch.zeros_like(index), 0) is None
    assert b.differing_gemm(x.double(), w.double(), None, index, 0) is None
    assert b.differing_gemm(x, w[:, :4], None, index, 0) is None  # groups


def test_sweep_and_blob_runs_time_the_gemm_floor(tmp_path):
    """--sweep-share and a blobs run write every share / the hard row with
    the plain conv, both strategies or auto, and the GEMM floor, ratios
    paired by round."""
    import json
    b = _bench()
    out = tmp_path / 'sweep.json'
    b.main(['--sweep-share', '--shapes', 'tiny', '--repeats', '2',
            '--warmup', '0', '--device', 'cpu', '--out', str(out)])
    data = json.loads(out.read_text())
    (res, ) = data['results']
    shares = [row['share'] for row in res['rows']]
    assert len(shares) == len(b.SWEEP_SHARES) and shares[0] == 0.0
    assert shares == sorted(shares)
    for row in res['rows']:
        assert {'conv', 'sparse', 'full', 'conv_again'} <= set(row['ratio'])
        assert row['ratio']['conv'] == 1.0 and row['ratio']['conv_again'] > 0
        # the floor exists where pixels differ (and oneDNN's linear does)
        assert ('gemm_differing' in row['ms']) == (
            row['share'] > 0 and 'conv_packed' in row['ms'])
    assert '| GEMM of the differing pixels | plain conv again (A/A) |' in \
        data['table']
    out = tmp_path / 'blobs.json'
    b.main(['--shapes', 'tiny', '--hard-only', '--index-source', 'blobs:0.2',
            '--repeats', '2', '--warmup', '0', '--device', 'cpu', '--out',
            str(out)])
    (res, ) = json.loads(out.read_text())['results']
    assert res['differing_share'] > 0.1
    assert set(res['hard_ms_ratio']) == set(res['hard_ms'])
    assert 'conv_again' in res['hard_ms']
    assert ('gemm_differing' in res['hard_ms']) == (
        'conv_packed' in res['hard_ms'])
    assert '| GEMM of the differing pixels |' in json.loads(
        out.read_text())['table']
