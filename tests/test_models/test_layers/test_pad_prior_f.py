"""f of eqs. 3-5: one non-linear default (ScaledTanh) for the paper's
aggregations, the initial margin holds after f, every option can learn
from the first step, a fresh model equals the vanilla one, and the
learnable part of f survives re-initialisation and checkpoints."""
import re

import pytest
import torch
import torch.nn as nn

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.models import (PADConv2d, PADPrior, ScaledTanh, convert_to_pad,
                           link_chain)

F_CFGS = {
    'identity': None,
    'tanh': dict(type='Tanh'),
    'relu': dict(type='ReLU'),
    'scaled_tanh': dict(type='ScaledTanh'),
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


def test_papers_aggregations_default_to_scaled_tanh_static_to_identity():
    for agg, want in (('markov', ScaledTanh), ('recurrent', ScaledTanh),
                      ('gated', ScaledTanh), ('static', nn.Identity)):
        layer = PADConv2d(4, 4, 3, padding=1, aggregation=agg)
        assert isinstance(layer.prior.act, want), agg
    assert layer.act_cfg is None
    act = PADConv2d(4, 4, 3, padding=1).prior.act
    assert (act.scale, act.learnable, act.bound) == (2.0, True, 2.0)
    # None still means the identity, explicitly
    layer = PADConv2d(4, 4, 3, padding=1, aggregation='recurrent',
                      act_cfg=None)
    assert isinstance(layer.prior.act, nn.Identity)
    assert layer.act_cfg is None


@pytest.mark.parametrize('aggregation', ['markov', 'recurrent', 'gated'])
@pytest.mark.parametrize('f,margin', [
    ('tanh', 1.5), ('tanh', 0.5), ('relu', 2.0), ('identity', 2.0),
    ('sigmoid', 0.6), ('tanh', None), ('scaled_tanh', None),
    ('scaled_tanh', 3.5)])
def test_init_margin_holds_after_f(aggregation, f, margin):
    act = dict(type='Sigmoid') if f == 'sigmoid' else F_CFGS[f]
    net = convert_to_pad(_net(), dict(
        layers=['0', '2', '4', '6'], aggregation=aggregation, act_cfg=act,
        init_margin=margin))
    want = margin if margin is not None else 1.5 if f == 'tanh' else 2.0
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


def test_fresh_mmseg_backbone_equals_vanilla_with_default_f_chain():
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
    assert isinstance(pad.layer4[1].conv2.prior.act, ScaledTanh)
    pad.load_state_dict(vanilla.state_dict(), strict=False)
    pad.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(pad(x), vanilla(x)):
            assert torch.equal(a, b)


# every activation mmcv registers (None: the identity)
ALL_FS = [None] + [dict(type=t) for t in (
    'ScaledTanh', 'Tanh', 'ReLU', 'LeakyReLU', 'PReLU', 'ReLU6', 'ELU',
    'Sigmoid', 'SiLU', 'Swish', 'GELU', 'HSigmoid', 'HSwish', 'Clamp')]


def _option_row_grads(layer: PADConv2d) -> torch.Tensor:
    """Gradient norm of each option's row of U_h after one backward."""
    if layer.prior.uses_hidden:
        link_chain([layer])
    layer.train()
    torch.manual_seed(0)
    out = layer(torch.randn(2, 4, 9, 9))
    (out * torch.randn_like(out)).sum().backward()
    return layer.prior.input_weight.grad.flatten(1).norm(dim=1)


@pytest.mark.parametrize('aggregation', ['markov', 'recurrent', 'gated'])
@pytest.mark.parametrize('act', ALL_FS, ids=lambda a: a and a['type'])
def test_every_option_learns_from_the_first_step(aggregation, act):
    """ReLU'(0) = 0 left the options other than the initial one dead
    forever: their pre-activations start where f' > 0."""
    try:
        layer = PADConv2d(4, 4, 3, padding=1, aggregation=aggregation,
                          act_cfg=act)
    except ValueError as e:  # refused: the message says why and what works
        assert 'cannot be expressed after f=' in str(e)
        return
    grads = _option_row_grads(layer)
    assert (grads > 0).all(), (act, grads)


@pytest.mark.parametrize('act,margin', [
    (dict(type='Sigmoid'), 2.0), (dict(type='Tanh'), 3.0),
    (dict(type='ReLU6'), 7.0)])
def test_refusal_only_suggests_an_f_that_learns(act, margin):
    with pytest.raises(ValueError) as e:
        PADConv2d(4, 4, 3, padding=1, act_cfg=act, init_margin=margin)
    suggested = re.findall(r"dict\(type='(\w+)'\)", str(e.value))
    assert suggested, str(e.value)
    for name in suggested:
        layer = PADConv2d(4, 4, 3, padding=1, act_cfg=dict(type=name))
        assert (_option_row_grads(layer) > 0).all(), name


def _trained_like(aggregation: str = 'markov', **kw) -> PADConv2d:
    torch.manual_seed(3)
    layer = PADConv2d(4, 4, 3, padding=1, aggregation=aggregation, **kw)
    with torch.no_grad():
        for p in layer.prior.parameters():
            p.add_(0.5 * torch.randn_like(p))
    if layer.prior.uses_hidden:
        link_chain([layer])
    return layer.eval()


def test_learned_scale_survives_checkpoints_and_is_reset_with_the_prior():
    layer = _trained_like()
    rho = float(layer.prior.act.log_scale)
    assert rho != 0
    fresh = _trained_like()
    with torch.no_grad():
        fresh.prior.act.log_scale.zero_()
    fresh.load_state_dict(layer.state_dict())
    assert float(fresh.prior.act.log_scale) == rho
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(fresh(x), layer(x))
    # reset_parameters re-initialises f with the prior: the margin holds
    layer.prior.reset_parameters()
    assert float(layer.prior.act.log_scale) == 0
    with torch.no_grad():
        h = layer.prior(x)
    torch.testing.assert_close(h[:, 0] - h[:, 1], torch.full_like(
        h[:, 0], 2.0), rtol=0, atol=1e-6)


def test_learned_scale_survives_init_cfg_pretrained(tmp_path):
    from mmengine.model import BaseModule

    class Net(BaseModule):

        def __init__(self, init_cfg=None):
            super().__init__(init_cfg)
            self.conv = PADConv2d(4, 4, 3, padding=1)

    trained = Net()
    with torch.no_grad():
        trained.conv.prior.act.log_scale.fill_(0.75)
        trained.conv.prior.input_bias.add_(1.0)
    path = str(tmp_path / 'pad.pth')
    torch.save(dict(state_dict=trained.state_dict()), path)
    net = Net(init_cfg=dict(type='Pretrained', checkpoint=path))
    net.init_weights()  # the prior's own init runs first, then the file
    assert float(net.conv.prior.act.log_scale) == 0.75
    torch.testing.assert_close(net.conv.prior.input_bias,
                               trained.conv.prior.input_bias)


@pytest.mark.parametrize('aggregation,old_f,want', [
    ('markov', None, nn.Identity), ('recurrent', dict(type='Tanh'), nn.Tanh),
    ('gated', dict(type='Tanh'), nn.Tanh)])
def test_checkpoint_of_the_old_format_keeps_its_f(aggregation, old_f, want):
    """A checkpoint written before ScaledTanh (no prior.act.log_scale) was
    trained with the old default f: Markov's identity, tanh for recurrent
    and gated. It loads into a default layer and gives the same output."""
    old = _trained_like(aggregation, act_cfg=old_f)
    state = old.state_dict()
    assert not any('act.' in k for k in state)
    new = _trained_like(aggregation)
    assert isinstance(new.prior.act, ScaledTanh)
    new.load_state_dict(state)  # strict
    assert isinstance(new.prior.act, want)
    assert new.act_cfg == old_f
    x = torch.randn(2, 4, 11, 9)
    with torch.no_grad():
        assert torch.equal(new(x), old(x))
        assert torch.equal(new.prior(x), old.prior(x))
