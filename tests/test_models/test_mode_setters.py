"""pad_mm.models.set_eval_mode / set_tau: one value to every PAD layer,
validated before any layer changes."""
import pytest
import torch
import torch.nn as nn

import pad_mm  # noqa: F401
from pad_mm.models import (EVAL_MODES, PADConv2d, convert_to_pad,
                           set_eval_mode, set_tau)


def _net():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=2, dilation=2),
                        PADConv2d(8, 8, 1))  # 1x1: a non-adaptive PAD conv
    net = convert_to_pad(net, dict(layers=['0', '2'], dilations=(1, 2, 4)))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # priors that depend on the input
        for k, v in net.state_dict().items():
            if '.prior.' in k:
                v.copy_(torch.randn(v.shape, generator=g))
    return net.eval()


def _modes(net):
    return [m.eval_mode for m in net.modules() if isinstance(m, PADConv2d)]


def test_set_eval_mode_sets_every_layer_and_counts_the_adaptive_ones():
    net = _net()
    assert len(_modes(net)) == 3
    for mode in EVAL_MODES:
        assert set_eval_mode(net, mode) == 2
        assert _modes(net) == [mode] * 3
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        set_eval_mode(net, 'gumbel')  # samples noise: two runs differ
        assert not torch.equal(net(x), net(x))
        set_eval_mode(net, 'hard')  # argmax: deterministic
        assert torch.equal(net(x), net(x))


@pytest.mark.parametrize('bad', ['hrad', 'Hard', 'gumbel_hard', '', None, 1])
def test_set_eval_mode_rejects_a_typo_and_changes_nothing(bad):
    net = _net()
    set_eval_mode(net, 'soft')
    with pytest.raises(ValueError) as info:
        set_eval_mode(net, bad)
    msg = str(info.value)
    assert repr(bad) in msg
    assert str(list(EVAL_MODES)) in msg
    assert _modes(net) == ['soft'] * 3


def test_set_eval_mode_without_pad_layers_returns_zero():
    assert set_eval_mode(nn.Sequential(nn.Conv2d(3, 3, 3)), 'hard') == 0


def test_set_tau_validates_before_setting():
    net = _net()
    assert set_tau(net, 0.5) == 2
    for bad in (0.0, -1.0, float('nan')):
        with pytest.raises(ValueError, match='tau must be a finite number'):
            set_tau(net, bad)
    assert [float(m.tau) for m in net.modules()
            if isinstance(m, PADConv2d) and m.adaptive] == [0.5, 0.5]
