"""PatchConvNet (the evidence configs' backbone): output shape, a stem
that sees exactly one patch, blocks addressable by name, the box mean
equal to average pooling without the padding, and argument errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pad_mm.models import PADConv2d, convert_to_pad
from pad_mm.models.backbones import PatchConvNet, box_mean


def test_shape_and_conv_names():
    net = PatchConvNet(channels=8, patch_size=4, num_convs=3, dilation=2,
                       pool=3)
    out, = net(torch.randn(2, 3, 64, 48))
    assert out.shape == (2, 8, 16, 12)
    convs = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    assert convs == ['stem.conv', 'convs.0.conv', 'convs.1.conv',
                     'convs.2.conv']
    assert all(net.get_submodule(f'convs.{i}.conv').dilation == (2, 2) and
               net.get_submodule(f'convs.{i}.conv').padding == (2, 2)
               for i in range(3))


def test_receptive_field_is_one_patch_before_the_blocks_and_grows_with_d():
    for d, num_convs in ((1, 1), (4, 1), (2, 2)):
        net = PatchConvNet(channels=4, patch_size=4, num_convs=num_convs,
                           dilation=d).eval()
        x = torch.randn(1, 3, 128, 128, requires_grad=True)
        seen = {}
        net.convs[0].register_forward_pre_hook(
            lambda m, inp: seen.__setitem__('in', inp[0]))
        out, = net(x)
        g, = torch.autograd.grad(seen['in'][0, :, 16, 16].sum(), x,
                                 retain_graph=True)
        rows = g.abs().sum((0, 1, 3)).nonzero().flatten()
        assert rows.tolist() == [64, 65, 66, 67]  # the pixel's own patch
        g, = torch.autograd.grad(out[0, :, 16, 16].sum(), x)
        rows = g.abs().sum((0, 1, 3)).nonzero().flatten()
        # each block reaches d map pixels (4 d input pixels) further
        assert rows[0] == 64 - 4 * d * num_convs
        assert rows[-1] == 67 + 4 * d * num_convs


@pytest.mark.parametrize('radius,shape', [(1, (5, 7)), (3, (32, 32)),
                                          (3, (4, 9))])
def test_box_mean_is_avg_pool_without_padding(radius, shape):
    x = torch.randn(2, 3, *shape, dtype=torch.float64, requires_grad=True)
    want = F.avg_pool2d(x, 2 * radius + 1, 1, radius,
                        count_include_pad=False)
    got = box_mean(x, radius)
    torch.testing.assert_close(got, want)
    g1, = torch.autograd.grad(got.square().sum(), x)
    g2, = torch.autograd.grad(want.square().sum(), x)
    torch.testing.assert_close(g1, g2)


def test_blocks_convert_to_pad_by_name():
    net = PatchConvNet(channels=8, num_convs=3)
    convert_to_pad(net, dict(layers=['convs.*.conv'], dilations=(1, 2, 4)))
    pads = [n for n, m in net.named_modules() if isinstance(m, PADConv2d)]
    assert pads == ['convs.0.conv', 'convs.1.conv', 'convs.2.conv']
    out, = net.eval()(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 8, 8, 8)


@pytest.mark.parametrize('kwargs,field', [
    (dict(channels=0), 'channels'), (dict(patch_size=True), 'patch_size'),
    (dict(num_convs=0), 'num_convs'), (dict(dilation=1.5), 'dilation'),
    (dict(pool=-1), 'pool')])
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        PatchConvNet(**kwargs)


def test_input_not_a_multiple_of_the_patch_is_refused():
    with pytest.raises(ValueError, match='patch_size=4'):
        PatchConvNet(channels=4)(torch.randn(1, 3, 30, 32))
