"""tau and the dilation options live in the checkpoint; DataParallel
replicas each carry their own chain state."""
import logging
import threading

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MMLogger

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.engine.hooks.tau_hook import set_tau
from pad_mm.models import PADConv2d, convert_to_pad
from pad_mm.models.layers.pad_conv import PADCheckpointMismatchError


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def log_lines():
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def _net(dilations=(1, 2, 4), **kw):
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=2, dilation=2),
                        nn.Conv2d(8, 8, 1))
    return convert_to_pad(net, dict(layers=['0', '2'], dilations=dilations,
                                    **kw))


def _perturb(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, v in net.state_dict().items():
            if '.prior.' in k:
                v.copy_(torch.randn(v.shape, generator=g))


# ------------------------------------------------------------------ tau
def test_tau_is_a_persistent_buffer_and_round_trips(tmp_path):
    net = _net(eval_mode='soft')
    _perturb(net)
    assert set_tau(net, 0.137) == 2  # what PADTauHook calls
    state = net.state_dict()
    assert float(state['0.pad_tau']) == pytest.approx(0.137)
    torch.save(state, tmp_path / 'ckpt.pth')
    fresh = _net(eval_mode='soft')
    assert fresh[0].tau == 1.0
    fresh.load_state_dict(torch.load(tmp_path / 'ckpt.pth'))
    assert fresh[0].tau == pytest.approx(0.137)
    assert fresh[2].tau == pytest.approx(0.137)
    # the soft eval output is the trained one, not the tau=1 one
    x = torch.randn(1, 3, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(x), net.eval()(x))
        set_tau(fresh, 1.0)
        assert not torch.allclose(fresh(x), net(x))


def test_old_checkpoint_without_tau_loads_with_one_line(log_lines):
    net = _net()
    _perturb(net)
    set_tau(net, 0.3)
    state = {k: v for k, v in net.state_dict().items()
             if not k.endswith(('pad_tau', 'pad_dilations'))}
    fresh = _net(tau=0.5)
    result = fresh.load_state_dict(state)  # strict: nothing missing
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert fresh[0].tau == 0.5  # the config's
    notes = [m for m in log_lines if 'without tau' in m]
    assert len(notes) == 1 and '\n' not in notes[0]
    assert "'0'" in notes[0] and 'tau=0.5' in notes[0]
    assert len([m for m in log_lines if 'without dilation options' in m]) \
        == 1
    # a vanilla state dict (no priors) loads without a note
    vanilla = {k: v for k, v in state.items() if '.prior.' not in k}
    target = _net()
    log_lines.clear()
    target.load_state_dict(vanilla, strict=False)
    assert not [m for m in log_lines if 'PAD' in m]


def test_tau_hook_buffer_follows_set_tau():
    layer = PADConv2d(4, 4, 3, padding=1)
    layer.tau = 0.25
    assert float(layer.pad_tau) == 0.25
    with pytest.raises(ValueError, match='tau'):
        layer.tau = 0.0


# -------------------------------------------------------- dilation options
def test_options_are_a_persistent_buffer():
    net = _net()
    assert net[0].pad_dilations.tolist() == [1, 2, 4]
    assert net[2].pad_dilations.tolist() == [2, 4, 8]  # absolute


def test_options_mismatch_refuses_naming_layer_and_both_sets():
    trained = _net((1, 2, 4))
    _perturb(trained)
    other = _net((1, 2, 3))
    with pytest.raises(PADCheckpointMismatchError) as e:
        other.load_state_dict(trained.state_dict())
    msg = str(e.value)
    assert "'0'" in msg and '(1, 2, 4)' in msg and '(1, 2, 3)' in msg
    assert 'reinit_priors_on_mismatch=True' in msg


def test_options_mismatch_reinitialises_only_those_priors(log_lines):
    trained = _net((1, 2, 4))
    _perturb(trained)
    # layer '0' changes meaning (1,2,4) -> (1,2,3); layer '2' in absolute
    # mode keeps (2, 4, 8)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=2, dilation=2),
                        nn.Conv2d(8, 8, 1))
    net = convert_to_pad(net, [
        dict(layers='0', dilations=(1, 2, 3),
             reinit_priors_on_mismatch=True),
        dict(layers='2', dilations=(2, 4, 8), dilation_mode='absolute',
             reinit_priors_on_mismatch=True)])
    fresh_prior = {k: v.clone() for k, v in net[0].prior.state_dict().items()}
    result = net.load_state_dict(trained.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    # layer 0: conv weights loaded, priors re-initialised, options kept
    assert torch.equal(net[0].weight, trained[0].weight)
    for k, v in net[0].prior.state_dict().items():
        assert torch.equal(v, fresh_prior[k]), k
    assert net[0].pad_dilations.tolist() == [1, 2, 3]
    # layer 2: same absolute options, priors loaded
    for k, v in net[2].prior.state_dict().items():
        assert torch.equal(v, trained[2].prior.state_dict()[k]), k
    notes = [m for m in log_lines if 're-initialised' in m]
    assert len(notes) == 1 and "'0'" in notes[0]
    assert '(1, 2, 4)' in notes[0] and '(1, 2, 3)' in notes[0]


def test_reinit_also_covers_a_different_number_of_options():
    trained = _net((1, 2))
    _perturb(trained)
    net = _net((1, 2, 4), reinit_priors_on_mismatch=True)
    net.load_state_dict(trained.state_dict())
    assert net[0].prior.input_weight.abs().sum() == 0
    with pytest.raises(PADCheckpointMismatchError):
        _net((1, 2, 4)).load_state_dict(trained.state_dict())


def test_bad_new_settings_are_refused():
    with pytest.raises(ValueError, match='dilation_mode'):
        PADConv2d(4, 4, 3, padding=1, dilation_mode='abs')
    with pytest.raises(ValueError, match='reinit_priors_on_mismatch'):
        PADConv2d(4, 4, 3, padding=1, reinit_priors_on_mismatch='yes')
    # absolute options must contain the native dilation
    with pytest.raises(ValueError, match='native dilation 2'):
        PADConv2d(4, 4, 3, padding=2, dilation=2, dilations=(1, 4),
                  dilation_mode='absolute')


# ------------------------------------------------------- DataParallel
def _replicate(module, n):
    """The module part of torch.nn.parallel.replicate (which needs CUDA):
    shallow per-module copies sharing parameters and plain attributes,
    exactly like DataParallel's replicas."""
    modules = list(module.modules())
    index = {id(m): i for i, m in enumerate(modules)}
    copies = [[m._replicate_for_data_parallel() for m in modules]
              for _ in range(n)]
    for rep in copies:
        for i, m in enumerate(modules):
            for name, param in m._parameters.items():
                rep[i]._parameters[name] = param
            for name, child in m._modules.items():
                if child is not None:
                    setattr(rep[i], name, rep[index[id(child)]])
    return [rep[0] for rep in copies]


@pytest.mark.parametrize('aggregation', ['recurrent', 'gated'])
def test_dataparallel_replicas_keep_their_own_chain_state(aggregation):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1))
    convert_to_pad(net, dict(layers=['0', '2', '4'], aggregation=aggregation,
                             eval_mode='soft'))
    _perturb(net, 1)
    net.eval()
    xs = [torch.randn(1, 3, 6, 6), torch.randn(1, 3, 6, 6) * 3]
    with torch.no_grad():
        want = [net(x) for x in xs]
    replicas = _replicate(net, 2)
    assert replicas[0][0].chain is replicas[1][0].chain  # shared, as in DP
    # force the worst interleaving: both replicas are between layer 0 and
    # layer 2 of the chain at the same time
    barrier = threading.Barrier(2, timeout=30)
    for rep in replicas:
        rep[2].register_forward_pre_hook(
            lambda m, a: [barrier.wait(), None][1])
    got, errors = [None, None], []

    def run(i):
        try:
            with torch.no_grad():
                got[i] = replicas[i](xs[i])
        except Exception as e:  # noqa: BLE001
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i, )) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    assert net[0].chain.pending_threads == 0  # nothing left behind
