"""f of eqs. 3-5: non-linear default for recurrent/gated, the initial
margin holds after f, and a fresh model equals the vanilla one."""
import pytest
import torch
import torch.nn as nn

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.models import PADConv2d, convert_to_pad
from pad_mm.models.layers.pad_conv import PADPrior

F_CFGS = {
    'identity': None,
    'tanh': dict(type='Tanh'),
    'relu': dict(type='ReLU'),
}


def _net():
    # dilations 1 and 2, a stride and groups: every conv stays 3x3
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, stride=2), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=4), nn.ReLU(),
        nn.Conv2d(8, 4, 3, padding=1))


def _logits(net, x):
    seen = []
    hooks = [m.probe.register_forward_hook(
        lambda m, inp, out: seen.append(inp[0]))
        for m in net.modules() if isinstance(m, PADConv2d)]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return seen


def test_recurrent_and_gated_default_to_tanh_markov_to_identity():
    for agg, want in (('markov', nn.Identity), ('recurrent', nn.Tanh),
                      ('gated', nn.Tanh)):
        layer = PADConv2d(4, 4, 3, padding=1, aggregation=agg)
        assert isinstance(layer.prior.act, want), agg
    # None still means the identity, explicitly
    layer = PADConv2d(4, 4, 3, padding=1, aggregation='recurrent',
                      act_cfg=None)
    assert isinstance(layer.prior.act, nn.Identity)
    assert layer.act_cfg is None


@pytest.mark.parametrize('aggregation', ['markov', 'recurrent', 'gated'])
@pytest.mark.parametrize('f,margin', [
    ('tanh', 1.5), ('tanh', 0.5), ('relu', 2.0), ('identity', 2.0),
    ('sigmoid', 0.6), ('tanh', None)])
def test_init_margin_holds_after_f(aggregation, f, margin):
    act = dict(type='Sigmoid') if f == 'sigmoid' else F_CFGS[f]
    net = convert_to_pad(_net(), dict(
        layers=['0', '2', '4', '6'], aggregation=aggregation, act_cfg=act,
        init_margin=margin))
    want = 1.5 if margin is None else margin
    torch.manual_seed(0)
    logits = _logits(net.eval(), torch.randn(2, 3, 12, 10))
    assert len(logits) == 4
    for h in logits:  # every layer of the chain, every pixel
        others = torch.cat([h[:, 1:2], h[:, 2:3]], 1)
        gap = h[:, :1] - others
        torch.testing.assert_close(gap, torch.full_like(gap, want),
                                   rtol=0, atol=2e-6)
    assert net[0].init_margin == pytest.approx(want)


def test_tanh_margin_is_no_longer_squashed():
    # before: the bias was the margin itself, tanh(2) - tanh(0) = 0.96
    prior = PADPrior(4, 3, aggregation='recurrent', act_cfg=dict(type='Tanh'),
                     init_margin=1.5)
    with torch.no_grad():
        h = prior(torch.randn(1, 4, 5, 5), None)
    assert float(h[0, 0, 0, 0] - h[0, 1, 0, 0]) == pytest.approx(1.5,
                                                                abs=1e-6)
    # the pre-activation biases are f^-1 of the targets (+-0.75)
    torch.testing.assert_close(
        torch.tanh(prior.input_bias.detach().double()),
        torch.tensor([0.75, -0.75, -0.75], dtype=torch.float64),
        rtol=0, atol=1e-6)


@pytest.mark.parametrize('act,margin', [
    (dict(type='Sigmoid'), 2.0), (dict(type='Tanh'), 2.0),
    (dict(type='Tanh'), 3.0), (dict(type='ReLU6'), 7.0)])
def test_refuses_a_margin_f_cannot_express(act, margin):
    with pytest.raises(ValueError, match='cannot be expressed after f='
                       f"{act['type']}") as e:
        PADConv2d(4, 4, 3, padding=1, aggregation='gated', act_cfg=act,
                  init_margin=margin)
    assert f'init_margin={margin}' in str(e.value)
    assert 'use init_margin <' in str(e.value)


@pytest.mark.parametrize('aggregation', ['markov', 'recurrent', 'gated'])
@pytest.mark.parametrize('f', sorted(F_CFGS))
def test_fresh_model_equals_vanilla_in_hard_eval(aggregation, f):
    torch.manual_seed(0)
    vanilla = _net().eval()
    pad = convert_to_pad(_net(), dict(
        layers=['0', '2', '4', '6'], aggregation=aggregation,
        act_cfg=F_CFGS[f]))
    pad.load_state_dict(vanilla.state_dict(), strict=False)
    pad.eval()
    x = torch.randn(2, 3, 13, 11)
    with torch.no_grad():
        # bitwise: a uniform choice runs nn.Conv2d's own call
        assert torch.equal(pad(x), vanilla(x))


def test_fresh_mmseg_backbone_equals_vanilla_with_tanh_chain():
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = dict(type='ResNetV1c', depth=18, strides=(1, 2, 2, 1),
               dilations=(1, 1, 1, 2), base_channels=8, stem_channels=8)
    torch.manual_seed(0)
    vanilla = MODELS.build(cfg)
    vanilla.eval()  # mmseg's ResNet.train returns None
    pad = MODELS.build(dict(
        type='PADBackbone', base_type='ResNetV1c',
        pad_cfg=dict(layers='layer4.*.conv*', aggregation='gated'),
        **{k: v for k, v in cfg.items() if k != 'type'}))
    assert isinstance(pad.layer4[1].conv2.prior.act, nn.Tanh)
    pad.load_state_dict(vanilla.state_dict(), strict=False)
    pad.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(pad(x), vanilla(x)):
            assert torch.equal(a, b)
