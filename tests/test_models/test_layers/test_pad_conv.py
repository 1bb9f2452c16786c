"""PADConv2d, priors, aggregation (eqs. 3-5), registry, conversion."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.models import (PADConv2d, PADPrior, convert_to_pad, link_chain)
from pad_mm.ops import pad_conv2d


def _randomise_prior(layer, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.prior.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))


def test_is_conv2d_with_same_keys_and_prior():
    layer = PADConv2d(8, 4, 3, padding=1, dilations=(1, 2, 4))
    assert isinstance(layer, nn.Conv2d)
    assert layer.adaptive
    keys = set(layer.state_dict())
    assert keys == {'weight', 'bias', 'prior.input_weight',
                    'prior.input_bias', 'prior.act.log_scale', 'pad_tau',
                    'pad_dilations'}
    assert layer.prior.input_weight.shape == (3, 8, 1, 1)


def test_prior_init_reproduces_vanilla_in_hard_eval():
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 7, 3, padding=2, dilation=2)
    pad = convert_to_pad(nn.Sequential(conv), dict(layers='0'))[0]
    assert pad.abs_dilations == (2, 4, 8)
    x = torch.randn(2, 5, 13, 11)
    pad.eval()
    torch.testing.assert_close(pad(x), conv(x), rtol=0, atol=0)
    # prior weights zero, bias favours the native dilation by the margin
    # (after f: ScaledTanh, bound 2, targets +-1)
    assert pad.prior.input_weight.abs().sum() == 0
    with torch.no_grad():
        after_f = pad.prior.act(pad.prior.input_bias)
    torch.testing.assert_close(after_f, torch.tensor([1.0, -1.0, -1.0]))


def test_training_explores_other_dilations():
    torch.manual_seed(0)
    layer = PADConv2d(4, 4, 3, padding=1, train_mode='gumbel_hard')
    seen = []

    def hook(module, inputs, output):
        seen.append(output.argmax(1))

    layer.probe.register_forward_hook(hook)
    layer.train()
    layer(torch.randn(4, 4, 16, 16))
    counts = torch.bincount(seen[0].flatten(), minlength=3).float()
    counts /= counts.sum()
    # P(native) = e^2 / (e^2 + 2) = 0.787 for margin 2
    assert abs(counts[0].item() - 0.787) < 0.05
    assert counts[1] > 0.05 and counts[2] > 0.05


def test_forward_matches_functional_for_each_mode():
    torch.manual_seed(0)
    layer = PADConv2d(4, 6, 3, stride=2, padding=1, dilations=(1, 3))
    _randomise_prior(layer)
    x = torch.randn(2, 4, 9, 9)
    with torch.no_grad():
        logits = layer.prior.act(F.conv2d(
            x, layer.prior.input_weight, layer.prior.input_bias, 2))
    layer.eval()
    for mode, probs in (
        ('hard', F.one_hot(logits.argmax(1), 2).permute(0, 3, 1, 2).float()),
        ('soft', torch.softmax(logits / 0.5, 1)),
    ):
        layer.eval_mode = mode
        layer.tau = 0.5
        expected = pad_conv2d(x, layer.weight, layer.bias, probs, (1, 3), 2)
        torch.testing.assert_close(layer(x), expected)
    # eval 'gumbel' is random, the others deterministic
    layer.eval_mode = 'gumbel'
    assert not torch.allclose(layer(x), layer(x))


def test_gradients_reach_weight_and_prior():
    layer = PADConv2d(3, 3, 3, padding=1)
    layer.train()
    layer(torch.randn(2, 3, 8, 8)).sum().backward()
    assert layer.weight.grad.abs().sum() > 0
    assert layer.prior.input_weight.grad.abs().sum() > 0


def test_gradcheck_layer_soft_modes():
    layer = PADConv2d(2, 2, 3, padding=1, eval_mode='soft').double().eval()
    _randomise_prior(layer, 3)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, ))


def _eq_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, 4, 6, 6, generator=g, dtype=torch.float64),
            torch.randn(2, 3, 3, 3, generator=g, dtype=torch.float64))


def _rand_prior(aggregation, act_cfg=None):
    prior = PADPrior(4, 3, stride=2, aggregation=aggregation,
                     act_cfg=act_cfg).double()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in prior.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return prior


def _conv1x1(x, w, b=None):
    # explicit per-pixel matrix product, independent of F.conv2d
    out = torch.einsum('dc,nchw->ndhw', w[:, :, 0, 0], x)
    return out if b is None else out + b.view(1, -1, 1, 1)


def test_markov_equation():
    x, _ = _eq_inputs()
    prior = _rand_prior('markov', dict(type='Tanh'))
    xs = x[:, :, ::2, ::2]
    expected = torch.tanh(_conv1x1(xs, prior.input_weight, prior.input_bias))
    torch.testing.assert_close(prior(x, None), expected)


def test_recurrent_equation_eq3():
    x, h = _eq_inputs()
    prior = _rand_prior('recurrent', dict(type='ReLU'))
    xs = x[:, :, ::2, ::2]
    expected = torch.relu(
        _conv1x1(h, prior.hidden_weight, prior.hidden_bias) +
        _conv1x1(xs, prior.input_weight, prior.input_bias))
    torch.testing.assert_close(prior(x, h), expected)


def test_gated_equations_eq4_eq5():
    x, h = _eq_inputs()
    prior = _rand_prior('gated')
    xs = x[:, :, ::2, ::2]
    a = torch.sigmoid(
        _conv1x1(h, prior.gate_hidden_weight) +
        _conv1x1(xs, prior.gate_input_weight, prior.gate_input_bias))
    expected = a * _conv1x1(h, prior.hidden_weight, prior.hidden_bias) + \
        (1 - a) * _conv1x1(xs, prior.input_weight, prior.input_bias)
    torch.testing.assert_close(prior(x, h), expected)


def test_hidden_prior_resized_to_output():
    x, _ = _eq_inputs()
    prior = _rand_prior('recurrent')
    h = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    h_small = F.interpolate(h, size=(3, 3), mode='bilinear',
                            align_corners=False)
    torch.testing.assert_close(prior(x, h), prior(x, h_small))


@pytest.mark.parametrize('aggregation', ['recurrent', 'gated'])
def test_chain_passes_hidden_prior(aggregation):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, stride=2), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1))
    convert_to_pad(net, dict(layers=['0', '2', '4'],
                             aggregation=aggregation, eval_mode='soft'))
    for i in (0, 2, 4):
        _randomise_prior(net[i], i)
    net.eval()
    seen = []
    for i in (0, 2, 4):
        net[i].probe.register_forward_hook(
            lambda m, inp, out: seen.append(inp[0]))
    x = torch.randn(2, 3, 8, 8)
    y = net(x)
    # hand computation: h0 from h=0, h1 from h0 (resized), h2 from h1
    h, feats, hs = None, x, []
    for i in (0, 2, 4):
        h = net[i].prior(feats, h)
        hs.append(h)
        feats = net[i + 1](net[i](feats)) if i < 4 else None
    for got, want in zip(seen, hs):
        torch.testing.assert_close(got, want)
    zero = torch.zeros(2, 3, 8, 8)
    torch.testing.assert_close(hs[0], net[0].prior(x, zero))
    # no state leaks: a second forward of another size gives the same result
    # as a fresh model would
    net(torch.randn(1, 3, 12, 10))
    torch.testing.assert_close(net(x), y)
    assert net[0].chain.pending() is None


def test_unlinked_non_markov_layer_errors():
    layer = PADConv2d(3, 3, 3, padding=1, aggregation='gated')
    with pytest.raises(RuntimeError, match='not linked'):
        layer(torch.randn(1, 3, 4, 4))
    link_chain([layer], 'solo')
    assert layer(torch.randn(1, 3, 4, 4)).shape == (1, 3, 4, 4)


def test_chain_rejects_incompatible_layers():
    a = PADConv2d(3, 3, 3, padding=1, aggregation='gated')
    b = PADConv2d(3, 3, 3, padding=1, aggregation='gated', dilations=(1, 2))
    with pytest.raises(ValueError, match='dilation options'):
        link_chain([a, b], 'c')


def test_non_adaptive_conv_is_plain():
    torch.manual_seed(0)
    layer = PADConv2d(4, 5, 1)
    assert not layer.adaptive
    assert set(layer.state_dict()) == {'weight', 'bias'}
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight,
                                                  layer.bias))


@pytest.mark.parametrize('kwargs,match', [
    (dict(dilations=()), 'dilations'),
    (dict(dilations=(1, 1)), 'dilations'),
    (dict(tau=0), 'tau'),
    (dict(tau=float('nan')), 'tau'),
    (dict(train_mode='hard'), 'train_mode'),
    (dict(eval_mode='sample'), 'eval_mode'),
    (dict(aggregation='lstm'), 'aggregation'),
    (dict(init_dilation=3), 'init_dilation'),
    (dict(init_margin=0), 'init_margin'),
    (dict(impl='cuda'), 'impl'),
])
def test_bad_layer_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        PADConv2d(3, 3, 3, padding=1, **kwargs)


def test_no_grad_and_eval_are_deterministic():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1),
                        nn.Conv2d(4, 4, 3, padding=1))
    convert_to_pad(net, dict(layers=['0', '1'], aggregation='recurrent'))
    for m in net:
        _randomise_prior(m)
    net.eval()
    x = torch.randn(1, 3, 9, 9)
    with torch.no_grad():
        a = net(x)
    b = net(x)
    torch.testing.assert_close(a, b)
    assert b.requires_grad and not a.requires_grad


@pytest.mark.parametrize('bias', [True, False])
def test_inplace_relu_after_pad_conv(bias):
    """VGG/ConvModule put ReLU(inplace=True) right after the conv: the PAD
    output must not be a view that autograd forbids modifying."""
    torch.manual_seed(0)
    layer = PADConv2d(8, 8, 3, padding=1, bias=bias).train()
    ref = PADConv2d(8, 8, 3, padding=1, bias=bias, impl='reference').train()
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(2, 8, 10, 10)
    grads = []
    for m in (layer, ref):
        torch.manual_seed(1)  # same Gumbel noise
        xi = x.clone().requires_grad_()
        y = torch.relu_(m(xi))
        (y * torch.arange(y.numel()).view_as(y).sin()).sum().backward()
        grads.append(xi.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('attr,typo', [('eval_mode', 'hrad'),
                                       ('train_mode', 'gumble'),
                                       ('impl', 'tirton')])
def test_mode_setters_reject_typos(attr, typo):
    from pad_mm.models import PADConfigError
    layer = PADConv2d(4, 4, 3, padding=1)
    before = getattr(layer, attr)
    with pytest.raises(PADConfigError, match=rf"{attr}='{typo}'.*allowed: "
                       r"one of \[") as e:
        setattr(layer, attr, typo)
    assert e.value.field == attr and e.value.value == typo
    assert getattr(layer, attr) == before


def test_settings_follow_what_was_changed_after_construction():
    layer = PADConv2d(4, 4, 3, padding=1, dilations=(1, 2))
    layer.tau = 0.3
    layer.eval_mode = 'soft'
    s = layer.settings
    assert (s.tau, s.eval_mode, s.dilations) == (0.3, 'soft', (1, 2))
    # a parsed settings object builds the same layer; keywords too are
    # refused next to it
    from pad_mm.models import parse_settings
    again = PADConv2d(4, 4, 3, padding=1, settings=s)
    assert again.settings == s
    with pytest.raises(TypeError, match='either settings or'):
        PADConv2d(4, 4, 3, padding=1, settings=s, tau=0.5)
    assert parse_settings(dict(dilations=(1, 2))).dilations == (1, 2)
