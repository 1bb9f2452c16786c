"""PADConv in every registry scope; vanilla checkpoints into PAD models."""
import copy
import subprocess
import sys

import pytest
import torch
from mmengine.registry import init_default_scope

import pad_mm.cls  # noqa: F401  (registers pad_mm for mmpretrain)
import pad_mm.seg  # noqa: F401  (and for mmseg)
from pad_mm.models import PADConv2d
from helpers.models import initial_logits


@pytest.mark.parametrize('scope', [None, 'mmseg', 'mmpretrain'])
def test_build_conv_layer_from_every_scope(scope):
    code = (
        'import torch, pad_mm.seg\n'
        'from mmcv.cnn import build_conv_layer\n'
        'from mmengine.registry import DefaultScope, init_default_scope\n'
        f'scope = {scope!r}\n'
        'if scope: init_default_scope(scope)\n'
        'assert getattr(DefaultScope.get_current_instance(), "scope_name",'
        ' None) == scope\n'
        'layer = build_conv_layer(dict(type="PADConv", dilations=(1, 2)),'
        ' 4, 6, 3, padding=1)\n'
        'assert type(layer) is pad_mm.models.PADConv2d, type(layer)\n'
        'assert layer.dilations == (1, 2)\n'
        'assert layer(torch.randn(1, 4, 5, 5)).shape == (1, 6, 5, 5)\n'
        'print("ok")\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith('ok')


def _resnet(conv_cfg=None, pad=False):
    from mmseg.models.backbones import ResNetV1c
    from pad_mm.models import convert_to_pad
    net = ResNetV1c(depth=18, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2),
                    conv_cfg=conv_cfg)
    if pad:
        net = convert_to_pad(net, dict(layers='layer4.*.conv?'))
    return net


def _assert_outputs_equal(a, b, x):
    a.eval(), b.eval()
    with torch.no_grad():
        for ya, yb in zip(a(x), b(x)):
            torch.testing.assert_close(ya, yb)


def test_vanilla_checkpoint_into_pad_model(tmp_path):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    vanilla = _resnet()
    vanilla.init_weights()
    # BN statistics that are not the identity
    vanilla.train()
    with torch.no_grad():
        vanilla(torch.randn(4, 3, 32, 32))
    path = tmp_path / 'vanilla.pth'
    torch.save({'state_dict': vanilla.state_dict()}, path)

    pad = _resnet(pad=True)
    from mmengine.runner import load_checkpoint
    state = torch.load(path)['state_dict']
    missing, unexpected = pad.load_state_dict(state, strict=False)
    assert unexpected == []
    assert sorted(missing) == sorted(
        f'layer4.{b}.conv{c}.prior.{p}' for b in (0, 1) for c in (1, 2)
        for p in ('input_weight', 'input_bias', 'act.log_scale'))
    # layer4.1.conv1 has dilation 2 (BasicBlock.conv2 is never dilated, and
    # contract_dilation halves it in layer4.0): the options are 2, 4, 8
    assert pad.layer4[1].conv1.abs_dilations == (2, 4, 8)
    assert pad.layer4[1].conv2.abs_dilations == (1, 2, 4)
    _assert_outputs_equal(vanilla, pad, torch.randn(2, 3, 40, 36))
    # and through mmengine's loader (torch.load fix applied)
    pad2 = _resnet(pad=True)
    load_checkpoint(pad2, str(path), map_location='cpu')
    _assert_outputs_equal(vanilla, pad2, torch.randn(1, 3, 32, 32))


def test_whole_backbone_conv_cfg_swap():
    init_default_scope('mmseg')
    torch.manual_seed(0)
    net = _resnet(conv_cfg=dict(type='PADConv', dilations=(1, 2, 4)))
    pads = [m for m in net.modules() if isinstance(m, PADConv2d)]
    adaptive = [m for m in pads if m.adaptive]
    # 3 stem convs + 2 per BasicBlock x 8 blocks are 3x3; the 3 downsample
    # 1x1 convs stay plain
    assert len(adaptive) == 3 + 16
    assert len(pads) - len(adaptive) == 3
    vanilla = _resnet()
    vanilla.load_state_dict(net.state_dict(), strict=False)
    _assert_outputs_equal(vanilla, net, torch.randn(1, 3, 32, 32))


def test_init_cfg_does_not_overwrite_prior():
    init_default_scope('mmseg')
    net = _resnet(pad=True)
    net.init_weights()  # Kaiming on Conv2d, Constant on BN
    prior = net.layer4[1].conv2.prior
    assert prior.input_weight.abs().sum() == 0
    assert initial_logits(prior) == [1.0, -1.0, -1.0]
    assert float(prior.act.log_scale) == 0


def test_pad_backbone_from_config_keeps_keys():
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = dict(
        type='PADBackbone',
        base_type='ResNetV1c',
        depth=18,
        pad_cfg=[
            dict(layers='layer3.*.conv2', aggregation='gated'),
            dict(layers=['layer4.0.conv2', 'layer4.1.conv2'],
                 dilations=(1, 2), name='l4')
        ])
    net = MODELS.build(copy.deepcopy(cfg))
    assert type(net).__name__ == 'ResNetV1c'
    names = sorted(n for n, m in net.named_modules()
                   if isinstance(m, PADConv2d))
    assert names == ['layer3.0.conv2', 'layer3.1.conv2', 'layer4.0.conv2',
                     'layer4.1.conv2']
    assert net.layer3[1].conv2.chain is net.layer3[0].conv2.chain
    assert net.layer3[1].conv2.chain_index == 1
    assert net.layer4[0].conv2.chain.name == 'l4'
    assert net.layer4[0].conv2.dilations == (1, 2)
    outs = net(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 16, 16), (128, 8, 8),
                                                  (256, 4, 4), (512, 2, 2)]


@pytest.mark.parametrize('pad_cfg,match', [
    (dict(layers='layer9.*'), 'matches no nn.Conv2d'),
    (dict(layers='layer2.0.downsample.0'), 'cannot be made adaptive'),
    (dict(layers='layer4.*.conv2', dilation=(1, 2)), 'unknown keys'),
    (dict(dilations=(1, 2)), "needs 'layers'"),
    ([dict(layers='layer4.0.conv2'), dict(layers='layer4.*.conv2')],
     'already placed'),
    ([], 'empty'),
    (dict(layers='layer4.*.conv2', dilations=(1, 1)), 'dilations'),
])
def test_bad_pad_cfg(pad_cfg, match):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    with pytest.raises((ValueError, TypeError), match=match):
        MODELS.build(
            dict(type='PADBackbone', base_type='ResNetV1c', depth=18,
                 pad_cfg=pad_cfg))
