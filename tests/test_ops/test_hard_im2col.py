"""The CPU hard path's two strategies (dominant conv + recomputed differing
pixels; every pixel by gather + GEMM), the choice between them by the
differing share, and the GEMM's backends (oneDNN on a cached packed
weight, F.linear, a grouped conv) and chunks."""
import pytest
import torch
import torch.nn.functional as F

from pad_mm.ops import (SPARSE_MAX_SHARE, SPARSE_MIN_PIXELS,
                        pad_conv2d_hard_im2col, pad_conv2d_hard_reference)
from pad_mm.ops import hard_im2col, native, taps


@pytest.fixture(params=['compiled', 'torch ops'])
def gather(request):
    """Run with the compiled gather and write-back (float32 NCHW inference)
    and with their torch-op version."""
    if request.param == 'torch ops':
        with native.disabled():
            yield request.param
        return
    if not native.available():
        pytest.skip(f'compiled helpers: {native.status()}')
    yield request.param


@pytest.fixture
def torch_ops():
    """The torch-op gather only (its tap tables are under test)."""
    with native.disabled():
        yield


@pytest.fixture
def fresh_gemm_check():
    """The packed-GEMM check forgotten before and after the test (as in a
    new process)."""
    hard_im2col.reset_packed_gemm_check()
    yield
    hard_im2col.reset_packed_gemm_check()


def _index(n, h, w, share, gen, dominant=1):
    index = torch.full((n, h, w), dominant, dtype=torch.long)
    m = torch.rand(n, h, w, generator=gen) < share
    index[m] = torch.randint(0, 3, (int(m.sum()), ), generator=gen)
    return index


@pytest.mark.parametrize('groups,stride,cl', [(1, 1, False), (2, 1, False),
                                              (1, 2, False), (4, 1, True),
                                              (8, 1, False)])
@pytest.mark.parametrize('share', [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize('strategy', ['full', 'sparse', 'auto'])
def test_both_strategies_equal_reference(groups, stride, cl, share,
                                         strategy, gather):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 11, 13, generator=gen)
    if cl:
        x = x.to(memory_format=torch.channels_last)
    w = torch.randn(8, 8 // groups, 3, 3, generator=gen)
    b = torch.randn(8, generator=gen)
    index = _index(2, (11 - 1) // stride + 1, (13 - 1) // stride + 1, share,
                   gen)
    ref = pad_conv2d_hard_reference(x, w, b, index, (1, 2, 4), stride, groups)
    out = pad_conv2d_hard_im2col(x, w, b, index, (1, 2, 4), stride, groups,
                                 strategy=strategy)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_sparse_gradients_match_reference():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 9, 9, generator=gen, dtype=torch.float64)
    w = torch.randn(6, 6, 3, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(6, generator=gen, dtype=torch.float64)
    index = _index(2, 9, 9, 0.15, gen)
    grads = []
    for fn in (lambda *a: pad_conv2d_hard_im2col(*a, strategy='sparse'),
               pad_conv2d_hard_reference):
        xs, ws, bs = (t.clone().requires_grad_() for t in (x, w, b))
        out = fn(xs, ws, bs, index, (1, 2, 4))
        out.pow(2).sum().backward()
        grads.append((xs.grad, ws.grad, bs.grad))
    for a, r in zip(*grads):
        torch.testing.assert_close(a, r)


def test_strategy_is_chosen_by_share_and_map_size(monkeypatch):
    calls = []
    real_sparse, real_full = hard_im2col.hard_sparse, hard_im2col.hard_full
    monkeypatch.setattr(hard_im2col, 'hard_sparse', lambda *a: (
        calls.append(('sparse', a[-2])), real_sparse(*a))[1])
    monkeypatch.setattr(hard_im2col, 'hard_full', lambda *a: (
        calls.append(('full', )), real_full(*a))[1])
    side = int(SPARSE_MIN_PIXELS**0.5) + 1  # a map just large enough
    x, w = torch.randn(1, 4, side, side), torch.randn(4, 4, 3, 3)
    index = torch.full((1, side, side), 2, dtype=torch.long)
    n_few = int(SPARSE_MAX_SHARE * side * side) // 2
    index.view(-1)[:n_few] = 0  # few differ: sparse around dominant 2
    pad_conv2d_hard_im2col(x, w, None, index, (1, 2, 4))
    index.view(-1)[:int(SPARSE_MAX_SHARE * side * side) + 5] = 0  # many
    pad_conv2d_hard_im2col(x, w, None, index, (1, 2, 4))
    small = torch.full((1, 10, 10), 2, dtype=torch.long)
    small.view(-1)[:2] = 0  # few differ, but a small map
    pad_conv2d_hard_im2col(torch.randn(1, 4, 10, 10), w, None, small,
                           (1, 2, 4))
    assert calls == [('sparse', 2), ('full', ), ('full', )]


def test_nothing_differs_is_one_plain_conv():
    x, w = torch.randn(1, 4, 10, 10), torch.randn(4, 4, 3, 3)
    index = torch.full((1, 10, 10), 1, dtype=torch.long)
    out = pad_conv2d_hard_im2col(x, w, None, index, (1, 2, 4))
    assert torch.equal(out, F.conv2d(x, w, None, 1, 2, 2))


@pytest.mark.parametrize('cl', [False, True])
@pytest.mark.parametrize('stride', [1, 2])
def test_blobs_at_the_border_equal_reference(stride, cl):
    """Blobs touching the border (taps outside the image), lone pixels,
    images without any differing pixel: values and gradients equal the
    reference's, for NCHW and channels-last inputs."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 8, 30, 34, generator=gen, dtype=torch.float64)
    if cl:
        x = x.to(memory_format=torch.channels_last)
    w = torch.randn(8, 8, 3, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(8, generator=gen, dtype=torch.float64)
    h, wd = (30 - 1) // stride + 1, (34 - 1) // stride + 1
    index = torch.ones(3, h, wd, dtype=torch.long)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(wd),
                            indexing='ij')
    index[0][((yy - 3)**2 + (xx - 4)**2) <= 9] = 2  # disc at the border
    index[2, h - 4:, wd - 5:] = 0  # square in the corner
    index[2, 2, 3] = 2  # lone pixels of dilation 4
    index[2, 7, wd - 8] = 2
    # image 1 has no differing pixel
    for t in (x, w, b):
        t.requires_grad_()
    out = pad_conv2d_hard_im2col(x, w, b, index, (1, 2, 4), stride,
                                 strategy='sparse')
    ref = pad_conv2d_hard_reference(x, w, b, index, (1, 2, 4), stride)
    torch.testing.assert_close(out, ref)
    assert out.is_contiguous(memory_format=torch.channels_last) == cl
    g1 = torch.autograd.grad(out.pow(2).sum(), (x, w, b))
    g2 = torch.autograd.grad(ref.pow(2).sum(), (x, w, b))
    for a, r in zip(g1, g2):
        torch.testing.assert_close(a, r)


def _case(seed, n=2, c=16, h=12, w=14, share=0.3):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen)
    wt = torch.randn(c + 4, c, 3, 3, generator=gen)
    b = torch.randn(c + 4, generator=gen)
    return x, wt, b, _index(n, h, w, share, gen)


def _inference_matches_reference(x, wt, b, index, strategy, groups=1):
    """The strategy run without autograd (where the packed GEMM and the
    chunk buffer are used) equals the reference."""
    with torch.no_grad():
        out = pad_conv2d_hard_im2col(x, wt, b, index, (1, 2, 4), 1, groups,
                                     strategy=strategy)
        ref = pad_conv2d_hard_reference(x, wt, b, index, (1, 2, 4), 1,
                                        groups)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('strategy', ['full', 'sparse'])
def test_inference_gemm_equals_reference_and_follows_weight_updates(
        strategy, gather):
    """Under no_grad the GEMM runs on a packed copy of the weight (where
    this torch has oneDNN's linear): an in-place weight update must be
    seen by the next call."""
    x, wt, b, index = _case(2)
    w = torch.nn.Parameter(wt)
    for scale in (1.0, -0.5):
        with torch.no_grad():
            w.mul_(scale)
        _inference_matches_reference(x, w, b, index, strategy)


@pytest.mark.parametrize('strategy', ['full', 'sparse'])
def test_inference_mode_weights_are_packed_per_call(strategy):
    """Tensors made under torch.inference_mode have no version counter:
    the packed weight cannot be cached, and an in-place change must still
    be seen."""
    x, wt, b, index = _case(8)
    with torch.inference_mode():
        w = wt.clone()
        for scale in (1.0, 3.0):
            w.mul_(scale)
            _inference_matches_reference(x, w, b, index, strategy)


def test_packed_gemm_is_checked_and_used_on_this_build():
    """oneDNN's linear on a packed weight is checked against F.linear in
    this process; this torch build (CPU with oneDNN) must pass, or every
    inference call would silently fall back. float64 is never packed."""
    assert hard_im2col.packed_gemm_ok(torch.float32) == \
        torch.backends.mkldnn.is_available()
    assert not hard_im2col.packed_gemm_ok(torch.float64)


@pytest.mark.parametrize('strategy', ['full', 'sparse'])
def test_without_the_onednn_linear_falls_back(monkeypatch, strategy,
                                              fresh_gemm_check):
    monkeypatch.setattr(hard_im2col, 'onednn_linear_ops',
                        lambda: (None, None))
    hard_im2col.reset_packed_gemm_check()
    assert not hard_im2col.packed_gemm_ok()
    _inference_matches_reference(*_case(3), strategy)


def test_a_wrong_onednn_linear_is_not_used(monkeypatch, fresh_gemm_check):
    pack, _ = hard_im2col.onednn_linear_ops()
    monkeypatch.setattr(hard_im2col, 'onednn_linear_ops', lambda: (
        pack, lambda a, w, b, *rest: torch.zeros(a.shape[0], w.shape[0])))
    hard_im2col.reset_packed_gemm_check()
    assert not hard_im2col.packed_gemm_ok()


def test_unknown_strategy_is_an_error():
    x, wt, b, index = _case(6)
    with pytest.raises(ValueError, match="strategy must be one of.*'fast'"):
        pad_conv2d_hard_im2col(x, wt, b, index, (1, 2, 4), strategy='fast')


@pytest.mark.parametrize('groups', [1, 4])
@pytest.mark.parametrize('strategy', ['full', 'sparse'])
def test_chunked_gemm_equals_reference(monkeypatch, groups,
                                       strategy, gather):
    """Pixels are multiplied in chunks of chunk_bytes() of taps (a reused
    buffer): a chunk of 5 pixels (not a divisor of the count) must give
    the same result."""
    x, wt, b, index = _case(4, share=0.4)
    wt = wt[:, :16 // groups]
    with hard_im2col.gemm_chunk_bytes(5 * 9 * 16 * 4):
        assert hard_im2col.chunk_bytes() == 5 * 9 * 16 * 4
        _inference_matches_reference(x, wt, b, index, strategy, groups)


@pytest.mark.parametrize('strategy', ['full', 'sparse'])
def test_tap_table_cache_and_its_fallback_equal_reference(monkeypatch,
                                                           strategy,
                                                           torch_ops):
    """The eager paths pick each pixel's tap rows from a table cached per
    geometry, or (above taps.TABLE_MAX_BYTES) compute them: both equal the
    reference, and a second geometry does not reuse the first's table."""
    for max_bytes in (taps.TABLE_MAX_BYTES, 0):
        monkeypatch.setattr(taps, 'TABLE_MAX_BYTES', max_bytes)
        for seed, (h, w) in enumerate([(12, 14), (12, 15), (12, 14)]):
            _inference_matches_reference(*_case(7 + seed, h=h, w=w),
                                         strategy)


def test_tap_tables_stay_within_their_memory_bound(monkeypatch, torch_ops):
    taps.clear_tables()
    x, wt, b, index = _case(9, h=12, w=14)
    one = 3 * index.numel() * 9 * 8  # D * pixels * k*k * int64
    monkeypatch.setattr(taps, 'TABLES_MAX_BYTES', 2 * one)
    for w in (14, 15, 16, 14):  # three geometries, then the first
        _inference_matches_reference(*_case(9, h=12, w=w), 'full')
        total = taps.table_cache_bytes()
        assert 0 < total <= 2 * one


def test_half_input_is_computed_in_float32():
    x, wt, b, index = _case(5)
    with torch.no_grad():
        out = pad_conv2d_hard_im2col(x.bfloat16(), wt.bfloat16(),
                                     b.bfloat16(), index, (1, 2, 4),
                                     strategy='full')
    ref = pad_conv2d_hard_reference(x.bfloat16().float(),
                                    wt.bfloat16().float(),
                                    b.bfloat16().float(), index, (1, 2, 4))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)
