"""aggregation='static' (an ablation control): the priors are a
learned [D] bias, the same at every pixel, with no input term; one Gumbel
sample per image and layer."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pad_mm.models import AGGREGATIONS, PADConv2d, convert_to_pad
from pad_mm.evaluation.complexity import pad_layer_flops


def _layer(**kw) -> PADConv2d:
    torch.manual_seed(0)
    kw.setdefault('dilations', (1, 2, 4))
    return PADConv2d(4, 6, 3, padding=1, aggregation='static', **kw)


def _record(layer, x):
    seen = {}
    handle = layer.probe.register_forward_hook(
        lambda m, inp, out: seen.update(logits=inp[0], probs=out))
    y = layer(x)
    handle.remove()
    return y, seen['logits'], seen['probs']


def test_static_is_an_aggregation_with_only_a_bias():
    assert 'static' in AGGREGATIONS
    layer = _layer()
    prior_keys = sorted(k for k in layer.state_dict() if 'prior' in k)
    assert prior_keys == ['prior.static_bias']
    assert layer.prior.static_bias.shape == (3, )
    # initial bias favours init_dilation by init_margin
    assert layer.prior.static_bias.tolist() == [2.0, 0.0, 0.0]
    assert not layer.prior.uses_hidden
    assert 'static' in repr(layer)


@pytest.mark.parametrize('stride', [1, 2])
def test_priors_and_probs_are_the_same_at_every_pixel(stride):
    layer = PADConv2d(4, 6, 3, stride=stride, padding=1,
                      aggregation='static', dilations=(1, 2, 4))
    with torch.no_grad():
        layer.prior.static_bias.copy_(torch.tensor([0.3, -0.2, 0.5]))
    x = torch.randn(5, 4, 9, 9)
    layer.train()
    torch.manual_seed(1)
    y, logits, probs = _record(layer, x)
    ho = (9 - 1) // stride + 1
    assert y.shape == (5, 6, ho, ho)
    assert logits.shape == probs.shape == (5, 3, ho, ho)
    # the priors are the bias everywhere: no input term
    assert torch.equal(logits, torch.tensor([0.3, -0.2, 0.5]).view(
        1, 3, 1, 1).expand(5, 3, ho, ho))
    # one Gumbel draw per image: constant over pixels ...
    assert torch.equal(probs, probs[:, :, :1, :1].expand_as(probs))
    assert torch.allclose(probs.sum(1), torch.ones(5, ho, ho))
    # ... but not the same for every image (noise is drawn per image)
    assert not torch.allclose(probs[0, :, 0, 0], probs[1, :, 0, 0])
    # the input does not enter the probabilities
    x2 = torch.randn(5, 4, 9, 9) * 10
    torch.manual_seed(1)
    _, logits2, probs2 = _record(layer, x2)
    assert torch.equal(logits2, logits) and torch.equal(probs2, probs)


def test_hard_eval_is_the_plain_conv_of_the_argmax_dilation():
    layer = _layer()
    with torch.no_grad():
        layer.prior.static_bias.copy_(torch.tensor([0.1, 0.0, 0.7]))
    layer.eval()
    x = torch.randn(2, 4, 10, 10)
    y, _, probs = _record(layer, x)
    assert torch.equal(probs.argmax(1), torch.full((2, 10, 10), 2))
    ref = F.conv2d(x, layer.weight, layer.bias, padding=4, dilation=4)
    assert torch.allclose(y, ref, atol=1e-5)


def test_soft_eval_mixes_with_softmax_of_bias():
    layer = _layer(eval_mode='soft', tau=0.5)
    bias = torch.tensor([0.2, -0.1, 0.4])
    with torch.no_grad():
        layer.prior.static_bias.copy_(bias)
    layer.eval()
    x = torch.randn(2, 4, 10, 10)
    y = layer(x)
    p = torch.softmax(bias / 0.5, 0)
    ref = sum(p[i] * F.conv2d(x, layer.weight, layer.bias, padding=d,
                              dilation=d) for i, d in enumerate((1, 2, 4)))
    assert torch.allclose(y, ref, atol=1e-5)


def test_bias_gets_gradients_and_learns_the_useful_dilation():
    """Train only the static bias to reproduce a d=4 conv: it learns to
    put its probability on d=4."""
    layer = _layer(eval_mode='soft', tau=1.0)
    layer.weight.requires_grad_(False)
    layer.bias.requires_grad_(False)
    x = torch.randn(8, 4, 12, 12)
    target = F.conv2d(x, layer.weight, layer.bias, padding=4, dilation=4)
    layer.train()
    loss = F.mse_loss(layer(x), target)
    loss.backward()
    g = layer.prior.static_bias.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    # d=4 is the useful option: gradient descent raises its logit
    assert g[2] < 0
    opt = torch.optim.Adam([layer.prior.static_bias], lr=0.1)
    torch.manual_seed(0)
    for _ in range(60):
        opt.zero_grad()
        F.mse_loss(layer(x), target).backward()
        opt.step()
    p = torch.softmax(layer.prior.static_bias.detach(), 0)
    assert p[2] > 0.9, p


def test_converted_static_model_and_flops():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1),
                              torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 3, padding=1))
    convert_to_pad(net, dict(layers=['0', '2'], aggregation='static',
                             dilations=(1, 2)))
    assert [type(m).__name__ for m in net] == ['PADConv2d', 'ReLU',
                                               'PADConv2d']
    assert net[0].chain is net[2].chain  # linked, but no h passes
    out = net(torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 8, 8, 8)
    flops = pad_layer_flops(net[2], (2, 8, 8, 8))
    assert flops['prior'] == 0
    assert flops['hard'] == flops['conv']
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        net[2].prior(torch.randn(2, 8, 8, 8))
    assert fc.get_total_flops() == 0


def test_unknown_aggregation_names_static():
    with pytest.raises(ValueError, match="'static'"):
        PADConv2d(4, 4, 3, padding=1, aggregation='fixed')
