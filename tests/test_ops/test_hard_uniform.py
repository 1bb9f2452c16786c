"""pad_conv2d_hard at a uniform index is nn.Conv2d's own call."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pad_mm.ops import pad_conv2d_hard, pad_conv2d_reference


@pytest.mark.parametrize('d,stride,groups', [(1, 1, 1), (2, 2, 1),
                                             (4, 1, 4), (2, 1, 8)])
def test_uniform_index_is_bitwise_nn_conv2d(d, stride, groups):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, stride=stride, padding=d, dilation=d,
                     groups=groups)
    x = torch.randn(2, 8, 15, 13)
    ref = conv(x)
    dilations = (1, 2, 4) if d != 1 else (1, 3)
    index = torch.full(ref.shape[:1] + ref.shape[2:], dilations.index(d))
    out = pad_conv2d_hard(x, conv.weight, conv.bias, index, dilations,
                          stride, groups)
    # exact equality holds on every CPU: it is the same op with the same
    # arguments, not a re-derivation of it
    assert torch.equal(out, ref)
    # and it is still differentiable in input, weight and bias
    x.requires_grad_(True)
    out = pad_conv2d_hard(x, conv.weight, conv.bias, index, dilations,
                          stride, groups)
    out.sum().backward()
    assert x.grad is not None and conv.weight.grad is not None


def test_mixed_index_still_matches_reference():
    torch.manual_seed(1)
    x = torch.randn(1, 8, 9, 9)
    w = torch.randn(8, 8, 3, 3)
    b = torch.randn(8)
    index = torch.randint(0, 3, (1, 9, 9))
    index[0, 0, 0], index[0, 0, 1] = 0, 2  # not uniform
    probs = F.one_hot(index, 3).permute(0, 3, 1, 2).float()
    torch.testing.assert_close(
        pad_conv2d_hard(x, w, b, index, (1, 2, 4)),
        pad_conv2d_reference(x, w, b, probs, (1, 2, 4)), rtol=1e-5,
        atol=1e-5)
