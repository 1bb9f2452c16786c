"""The CPU hard path's two strategies (dominant conv + recomputed differing
pixels; full gather) and the choice between them by the differing share."""
import pytest
import torch
import torch.nn.functional as F

from pad_mm.ops import (SPARSE_MAX_SHARE, pad_conv2d_hard_im2col,
                        pad_conv2d_hard_reference)
from pad_mm.ops import im2col


def _index(n, h, w, share, gen, dominant=1):
    index = torch.full((n, h, w), dominant, dtype=torch.long)
    m = torch.rand(n, h, w, generator=gen) < share
    index[m] = torch.randint(0, 3, (int(m.sum()), ), generator=gen)
    return index


@pytest.mark.parametrize('groups,stride,cl', [(1, 1, False), (2, 1, False),
                                              (1, 2, False), (4, 1, True),
                                              (8, 1, False)])
@pytest.mark.parametrize('share', [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize('max_sparse_share', [0.0, 1.0, None])
def test_both_strategies_equal_reference(groups, stride, cl, share,
                                         max_sparse_share):
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
                                 max_sparse_share=max_sparse_share)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_sparse_gradients_match_reference():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 9, 9, generator=gen, dtype=torch.float64)
    w = torch.randn(6, 6, 3, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(6, generator=gen, dtype=torch.float64)
    index = _index(2, 9, 9, 0.15, gen)
    grads = []
    for fn in (lambda *a: pad_conv2d_hard_im2col(*a, max_sparse_share=1.0),
               pad_conv2d_hard_reference):
        xs, ws, bs = (t.clone().requires_grad_() for t in (x, w, b))
        out = fn(xs, ws, bs, index, (1, 2, 4))
        out.pow(2).sum().backward()
        grads.append((xs.grad, ws.grad, bs.grad))
    for a, r in zip(*grads):
        torch.testing.assert_close(a, r)


def test_strategy_is_chosen_by_the_differing_share(monkeypatch):
    calls = []
    real_sparse, real_gather = im2col._hard_sparse, im2col._hard_gather
    monkeypatch.setattr(im2col, '_hard_sparse', lambda *a: (
        calls.append(('sparse', a[-1])), real_sparse(*a))[1])
    monkeypatch.setattr(im2col, '_hard_gather', lambda *a: (
        calls.append(('gather', )), real_gather(*a))[1])
    x, w = torch.randn(1, 4, 10, 10), torch.randn(4, 4, 3, 3)
    index = torch.full((1, 10, 10), 2, dtype=torch.long)
    n_few = int(SPARSE_MAX_SHARE * 100) // 2
    index.view(-1)[:n_few] = 0  # few differ: sparse around dominant 2
    pad_conv2d_hard_im2col(x, w, None, index, (1, 2, 4))
    index.view(-1)[:int(SPARSE_MAX_SHARE * 100) + 5] = 0  # too many
    pad_conv2d_hard_im2col(x, w, None, index, (1, 2, 4))
    assert calls == [('sparse', 2), ('gather', )]


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
                                 max_sparse_share=1.0)
    ref = pad_conv2d_hard_reference(x, w, b, index, (1, 2, 4), stride)
    torch.testing.assert_close(out, ref)
    assert out.is_contiguous(memory_format=torch.channels_last) == cl
    g1 = torch.autograd.grad(out.pow(2).sum(), (x, w, b))
    g2 = torch.autograd.grad(ref.pow(2).sum(), (x, w, b))
    for a, r in zip(g1, g2):
        torch.testing.assert_close(a, r)
