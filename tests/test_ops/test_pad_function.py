"""The torch-only core: pad_conv2d contract, Gumbel sampling."""
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from pad_mm.ops import (check_dilations, gumbel_noise, gumbel_softmax,
                        hard_probs, pad_conv2d, pad_conv2d_reference)


def _probs(n, d, h, w, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(n, d, h, w, generator=g), 1).to(dtype)


@pytest.mark.parametrize('k', [3, 5])
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('groups', ['one', 'depthwise'])
@pytest.mark.parametrize('size', [(9, 9), (8, 11)])
def test_one_hot_probs_equal_dilated_conv(k, stride, groups, size):
    torch.manual_seed(0)
    c = 6
    g = 1 if groups == 'one' else c
    x = torch.randn(2, c, *size, dtype=torch.float64)
    w = torch.randn(4 if g == 1 else c, c // g, k, k, dtype=torch.float64)
    b = torch.randn(w.shape[0], dtype=torch.float64)
    dilations = (1, 2, 4)
    h_out = (size[0] - 1) // stride + 1
    w_out = (size[1] - 1) // stride + 1
    for i, d in enumerate(dilations):
        probs = torch.zeros(2, 3, h_out, w_out, dtype=torch.float64)
        probs[:, i] = 1
        out = pad_conv2d(x, w, b, probs, dilations, stride=stride, groups=g)
        ref = F.conv2d(x, w, b, stride, d * (k - 1) // 2, d, g)
        assert out.shape == ref.shape == (2, w.shape[0], h_out, w_out)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def test_mixture_is_linear_in_probs():
    torch.manual_seed(1)
    x = torch.randn(1, 3, 7, 7, dtype=torch.float64)
    w = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    probs = _probs(1, 2, 7, 7)
    out = pad_conv2d(x, w, None, probs, (1, 3))
    expected = probs[:, :1] * F.conv2d(x, w, None, 1, 1, 1) + \
        probs[:, 1:] * F.conv2d(x, w, None, 1, 3, 3)
    torch.testing.assert_close(out, expected)


def test_gradcheck_op():
    torch.manual_seed(2)
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    p = _probs(1, 3, 3, 3).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda *a: pad_conv2d(*a, (1, 2, 4), stride=2), (x, w, b, p))


@pytest.mark.parametrize('noise', [False, True])
def test_gradcheck_soft_sampling(noise):
    logits = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    seed = 7

    def f(lg):
        gen = torch.Generator().manual_seed(seed)
        return gumbel_softmax(lg, tau=0.7, noise=noise, generator=gen)

    assert torch.autograd.gradcheck(f, (logits, ))


def test_straight_through_gradient_is_soft_gradient():
    logits = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    weight = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    grads = []
    for hard in (False, True):
        lg = logits.clone().requires_grad_()
        gen = torch.Generator().manual_seed(5)
        y = gumbel_softmax(lg, tau=0.5, hard=hard, generator=gen)
        if hard:
            assert set(y.detach().unique().tolist()) == {0.0, 1.0}
            torch.testing.assert_close(y.detach().sum(1),
                                       torch.ones(2, 4, 4,
                                                  dtype=torch.float64))
        (y * weight).sum().backward()
        grads.append(lg.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_gumbel_softmax_values():
    logits = torch.tensor([[[[0.]], [[1.]], [[2.]]]])
    soft = gumbel_softmax(logits, tau=2.0, noise=False)
    torch.testing.assert_close(soft, torch.softmax(logits / 2.0, 1))
    gen = torch.Generator().manual_seed(3)
    g = gumbel_noise(logits.shape, generator=gen)
    gen = torch.Generator().manual_seed(3)
    noisy = gumbel_softmax(logits, tau=0.5, generator=gen)
    torch.testing.assert_close(noisy, torch.softmax((logits + g) / 0.5, 1))
    hard = gumbel_softmax(logits, tau=0.5, hard=True, noise=False)
    assert hard.flatten().tolist() == [0.0, 0.0, 1.0]


def test_gumbel_noise_statistics():
    g = gumbel_noise((200000, ), generator=torch.Generator().manual_seed(0))
    # Gumbel(0, 1): mean = Euler-Mascheroni, var = pi^2 / 6
    assert abs(g.mean().item() - 0.5772) < 0.01
    assert abs(g.var().item() - 1.6449) < 0.03
    # argmax of logits + noise is a sample of softmax(logits)
    logits = torch.tensor([0.0, 1.0, 2.0])
    gen = torch.Generator().manual_seed(1)
    n = 100000
    idx = (logits + gumbel_noise((n, 3), generator=gen)).argmax(1)
    freq = torch.bincount(idx, minlength=3).float() / n
    torch.testing.assert_close(freq, torch.softmax(logits, 0), atol=0.01,
                               rtol=0)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('tau', [1e-4, 0.1, 1.0, 100.0])
def test_gumbel_finite_in_low_precision(dtype, tau):
    logits = torch.tensor([-60000., 0., 60000.]).view(1, 3, 1, 1).expand(
        64, 3, 8, 8).contiguous().to(dtype)
    for hard in (False, True):
        y = gumbel_softmax(logits, tau=tau, hard=hard)
        assert y.dtype == dtype
        assert torch.isfinite(y).all()
        torch.testing.assert_close(
            y.float().sum(1), torch.ones(64, 8, 8), atol=1e-2, rtol=0)


def test_hard_probs_one_hot():
    logits = torch.tensor([[[[0.1, 5.]], [[2., 1.]], [[0., 0.]]]])
    assert hard_probs(logits).squeeze().T.tolist() == [[0, 1, 0], [1, 0, 0]]


@pytest.mark.parametrize('dilations,err', [
    ((), ValueError), ([1, 1], ValueError), ((0, 1), ValueError),
    ((-1, 2), ValueError), ((1.0, 2), TypeError), ('12', TypeError),
    ((True, 2), TypeError)
])
def test_bad_dilations(dilations, err):
    with pytest.raises(err, match='dilations'):
        check_dilations(dilations)


def test_bad_probs_shape_and_tau():
    x = torch.randn(1, 2, 5, 5)
    w = torch.randn(2, 2, 3, 3)
    with pytest.raises(ValueError, match=r'probs must be \[N, D, H_out'):
        pad_conv2d(x, w, None, torch.ones(1, 2, 5, 5), (1, 2, 4))
    with pytest.raises(ValueError, match='odd square kernel'):
        pad_conv2d(x, torch.randn(2, 2, 2, 2), None, torch.ones(1, 1, 5, 5),
                   (1, ))
    with pytest.raises(ValueError, match='impl must be one of'):
        pad_conv2d(x, w, None, torch.ones(1, 1, 5, 5), (1, ), impl='nope')
    for tau in (0, -1.0, float('nan'), float('inf')):
        with pytest.raises(ValueError, match='tau'):
            gumbel_softmax(torch.zeros(1, 2, 1, 1), tau=tau)


def test_reference_is_default_ground_truth():
    x = torch.randn(2, 4, 6, 6)
    w = torch.randn(4, 4, 3, 3)
    p = _probs(2, 3, 6, 6, dtype=torch.float32)
    torch.testing.assert_close(
        pad_conv2d(x, w, None, p, (1, 2, 4), impl='reference'),
        pad_conv2d_reference(x, w, None, p, (1, 2, 4)))


def test_ops_import_without_openmmlab():
    code = ('import sys\n'
            'for m in ["mmengine", "mmcv", "mmseg", "mmpretrain"]:\n'
            '    sys.modules[m] = None\n'
            'import pad_mm.ops, pad_mm\n'
            'assert not pad_mm.HAS_OPENMMLAB\n'
            'loaded = [m for m in sys.modules if m.split(".")[0] in '
            '("mmengine", "mmcv", "mmseg", "mmpretrain") and '
            'sys.modules[m] is not None]\n'
            'assert not loaded, loaded\n'
            'print("ok")')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'ok'
