"""FCN heads: upsampling geometry (bilinear transposed convs, crops,
at-once scaling) and argument errors."""
import pytest
import torch
import torch.nn.functional as F

from helpers.models import build_seg as _build


def test_bad_head_arguments():
    with pytest.raises(ValueError, match='in_channels'):
        _build(dict(type='FCN8sHead', in_channels=(512, 4096),
                    in_index=(0, 1), num_classes=3))
    with pytest.raises(ValueError, match='skip_scales'):
        _build(dict(type='FCN8sHead', in_channels=(8, 16, 32),
                    in_index=(0, 1, 2), skip_scales=(0.1, ),
                    num_classes=3))


def _fcn8s(**kw):
    head = _build(dict(type='FCN8sHead', in_channels=(8, 16, 32),
                       in_index=(0, 1, 2), num_classes=3, **kw))
    head.init_weights()
    return head


def test_fcn_upsampling_is_bilinear_learned_2x_fixed_final():
    head = _fcn8s(skip_scales=(1e-4, 1e-2))
    assert head.upscore2.weight.requires_grad
    assert head.upscore_pool4.weight.requires_grad
    assert not head.upscore8.weight.requires_grad  # fixed (Long et al.)
    z = torch.randn(1, 3, 5, 6)
    for up, f in ((head.upscore2, 2), (head.upscore8, 8)):
        with torch.no_grad():
            got = up(z)
        ref = F.interpolate(z, scale_factor=f, mode='bilinear',
                            align_corners=False)
        assert got.shape == ref.shape
        # equal away from the border (zero padding vs edge clamping)
        assert torch.allclose(got[..., f:-f, f:-f], ref[..., f:-f, f:-f],
                              atol=1e-5)
    head32 = _build(dict(type='FCN32sHead', in_channels=(32, ),
                         in_index=(0, ), num_classes=3,
                         learn_final_upsample=True))
    assert head32.upscore.weight.requires_grad
    assert head32.upscore.kernel_size == (64, 64)


def test_fcn8s_forward_skips_scales_and_crops():
    head = _fcn8s(skip_scales=(1e-4, 1e-2))
    # input 45 x 61: pool3 6 x 8, pool4 3 x 4, fc7 2 x 2 (ceil mode)
    pool3, pool4, fc7 = (torch.randn(1, 8, 6, 8), torch.randn(1, 16, 3, 4),
                         torch.randn(1, 32, 2, 2))
    with torch.no_grad():
        out = head([pool3, pool4, fc7])
        assert out.shape == (1, 3, 48, 64)
        assert torch.count_nonzero(out) == 0  # score layers start at zero
        for layer in (head.conv_seg, head.score_pool4, head.score_pool3):
            layer.weight.normal_()
            layer.bias.normal_()
        out = head([pool3, pool4, fc7])
        # the reference computation, FCN-8s at once
        s = head.upscore2(head.conv_seg(fc7))[..., :3, :4] + \
            head.score_pool4(pool4 * 1e-2)
        s = head.upscore_pool4(s)[..., :6, :8] + \
            head.score_pool3(pool3 * 1e-4)
        assert torch.allclose(out, head.upscore8(s))
        # predictions are cropped (offset 0) to the padded input size
        pred = head.predict_by_feat(out, [dict(img_shape=(45, 61),
                                               pad_shape=(45, 61))])
        assert torch.equal(pred, out[..., :45, :61])
