"""PAD's defining behaviour: a layer learns a known per-pixel dilation, and
while it trains its samples follow its priors (not the Gumbel noise).

The teacher is ``pad_conv2d_hard_reference`` with fixed weights at a true
index map that is constant on 4x4 blocks and readable from the input (three
indicator channels). The student is a default ``PADConv2d`` trained with
Adam under ``PADTauHook``'s default schedule (exp, tau 1 -> 0.1).
"""
import math

import pytest
import torch
import torch.nn.functional as F

import pad_mm  # noqa: F401
from pad_mm.engine import tau_at
from pad_mm.evaluation import forward_stats, summarize_dilation_stats
from pad_mm.models import PADConv2d, link_chain
from pad_mm.models import AGGREGATIONS, default_act_cfg
from pad_mm.ops import gumbel_softmax, pad_conv2d_hard_reference

DILATIONS = (1, 2, 4)
C, BLOCK, SIZE = 8, 4, 32
NOISE = 0.1  # target noise: both losses have the floor NOISE**2
STEPS = 300


def _batch(gen: torch.Generator, n: int):
    """x [n, C, SIZE, SIZE] (channels 0-2: one-hot of the true option,
    constant per 4x4 block; 3-7: noise) and the true index [n, SIZE, SIZE]."""
    blocks = SIZE // BLOCK
    idx = torch.randint(0, len(DILATIONS), (n, blocks, blocks),
                        generator=gen)
    idx = idx.repeat_interleave(BLOCK, 1).repeat_interleave(BLOCK, 2)
    x = torch.randn(n, C, SIZE, SIZE, generator=gen)
    x[:, :len(DILATIONS)] = F.one_hot(idx, len(DILATIONS)).permute(
        0, 3, 1, 2).float()
    return x, idx


def _target(x, idx, weight, gen):
    y = pad_conv2d_hard_reference(x, weight, None, idx, DILATIONS, 1, 1)
    return y + NOISE * torch.randn(y.shape, generator=gen)


def _student(aggregation: str) -> PADConv2d:
    layer = PADConv2d(C, C, 3, padding=1, bias=False, dilations=DILATIONS,
                      aggregation=aggregation, impl='reference')
    if layer.prior.uses_hidden:
        link_chain([layer], 'toy')
    return layer


def _run(layer, x, train: bool):
    """(output, logits, probs) of one forward in train or eval mode."""
    seen = {}
    hook = layer.probe.register_forward_hook(
        lambda m, inp, out: seen.update(logits=inp[0], probs=inp[1]))
    layer.train(train)
    try:
        out = layer(x)
    finally:
        hook.remove()
    return out, seen['logits'], seen['probs']


def _train(aggregation: str):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(C, C, 3, 3, generator=gen) / math.sqrt(9 * C)
    layer = _student(aggregation)
    with torch.no_grad():
        layer.weight.copy_(weight)
    opt = torch.optim.Adam(layer.parameters(), lr=0.02)
    for it in range(STEPS):
        layer.tau = tau_at(it, 'exp', 1.0, 0.1, STEPS)  # PADTauHook default
        x, idx = _batch(gen, 8)
        out, _, _ = _run(layer, x, train=True)
        loss = F.mse_loss(out, _target(x, idx, weight, gen))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return layer, weight, gen


@pytest.fixture(scope='module')
def torch_one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize('aggregation', ['markov', 'recurrent', 'gated'])
def test_layer_learns_a_known_per_pixel_dilation(aggregation,
                                                 torch_one_thread):
    layer, weight, gen = _train(aggregation)
    x, idx = _batch(gen, 16)  # fresh pixels
    y = _target(x, idx, weight, gen)
    with torch.no_grad():
        out_eval, logits, _ = _run(layer, x, train=False)
        out_train, _, sample = _run(layer, x, train=True)
    hard_agree = float((logits.argmax(1) == idx).float().mean())
    train_agree = float((sample.argmax(1) == idx).float().mean())
    stats = summarize_dilation_stats({'toy': dict(
        forward_stats(logits, logits, DILATIONS), dilations=DILATIONS)})
    eval_loss = float(F.mse_loss(out_eval, y))
    train_loss = float(F.mse_loss(out_train, y))
    assert hard_agree >= 0.95, (aggregation, hard_agree)
    # the training-time sample follows the prior, not the Gumbel noise
    # (tanh-bounded priors gave about 0.78 here)
    assert train_agree >= 0.95, (aggregation, train_agree)
    assert stats['toy']['var'] < 0.1, stats['toy']
    assert train_loss <= 5 * eval_loss, (train_loss, eval_loss)


def _confident(layer: PADConv2d, margin: float, index: int) -> None:
    """Set the prior so that, after f, option ``index`` leads every other
    by ``margin`` at every pixel (zero input weights; the biases and any
    scale f has)."""
    prior = layer.prior
    act = prior.act
    with torch.no_grad():
        for p in prior.parameters():
            p.zero_()
        targets = torch.full((len(layer.dilations), ), -margin / 2)
        targets[index] = margin / 2
        if prior.act_cfg is None:
            pre = targets
        elif prior.act_cfg['type'] == 'ScaledTanh':
            act.log_scale.fill_(math.log(margin / act.scale))  # s = margin
            pre = torch.atanh(targets / margin)
        else:
            raise AssertionError(f'no recipe for the default f '
                                 f'{prior.act_cfg}: extend this test')
        bias = prior.static_bias if layer.aggregation == 'static' else \
            prior.input_bias
        bias.copy_(pre)
        if layer.aggregation == 'gated':
            prior.hidden_bias.copy_(pre)


@pytest.mark.parametrize('aggregation', AGGREGATIONS)
def test_every_default_f_can_become_confident(aggregation):
    layer = _student(aggregation)
    _confident(layer, 20.0, index=2)
    x, _ = _batch(torch.Generator().manual_seed(0), 4)
    torch.manual_seed(0)
    with torch.no_grad():
        _, logits, sample = _run(layer, x, train=True)
    gap = logits[:, 2:3] - torch.cat([logits[:, :2]], 1)
    torch.testing.assert_close(gap, torch.full_like(gap, 20.0), rtol=0,
                               atol=1e-3)
    follow = float((sample.argmax(1) == 2).float().mean())
    stats = forward_stats(logits, sample, DILATIONS)
    var = float(stats['sum_var'] / stats['count'])
    assert follow >= 0.999, follow
    assert var < 1e-3, var


def test_default_f_is_the_same_for_the_papers_aggregations():
    fs = {a: default_act_cfg(a) for a in ('markov', 'recurrent', 'gated')}
    assert len({repr(f) for f in fs.values()}) == 1, fs
    assert fs['markov'] is not None  # a non-linear f, as in the paper


def test_sample_agreement_does_not_depend_on_tau():
    """Gumbel-max: P(argmax(h + g) = argmax h) = softmax(h)_max at every
    tau; tau only decides how one-hot the relaxed sample is."""
    logits = torch.tensor([1.0, 0.0, -0.5]).view(1, 3, 1, 1).expand(
        100_000, 3, 1, 1)
    want = float(torch.softmax(logits[0, :, 0, 0], 0).max())
    agree = {}
    for tau in (1.0, 0.2):
        torch.manual_seed(0)
        sample = gumbel_softmax(logits, tau, noise=True)
        agree[tau] = float((sample.argmax(1) == 0).float().mean())
        assert agree[tau] == pytest.approx(want, abs=0.01)
    assert abs(agree[1.0] - agree[0.2]) < 0.01
