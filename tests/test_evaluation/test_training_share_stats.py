"""p_max and off_argmax: what the layers sample while training, next to
what they choose in hard eval."""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub

import pad_mm  # noqa: F401
from pad_mm.engine import PADDilationStatsHook
from pad_mm.evaluation import PADDilationMetric, PADRecorder
from pad_mm.models import PADConv2d


def _identity_prior_layer():
    """A PAD layer whose hidden priors equal its 3-channel input."""
    layer = PADConv2d(3, 4, 3, padding=1, dilations=(1, 2, 4), act_cfg=None)
    with torch.no_grad():
        layer.prior.input_weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        layer.prior.input_bias.zero_()
    return nn.Sequential(layer)


# per pixel logits (h_1, h_2, h_4), tiled over a 100 x 100 image
ROWS = [[2.0, 0.0, -1.0], [0.0, 1.5, 0.0], [-1.0, 0.0, 3.0],
        [0.5, 0.5, 0.2]]


def _image():
    x = torch.tensor(ROWS).T.reshape(1, 3, 2, 2)
    return x.repeat(1, 1, 50, 50)


def _p_max():
    return sum(max(math.exp(v) for v in r) / sum(math.exp(v) for v in r)
               for r in ROWS) / len(ROWS)


def test_metric_reports_p_max_and_the_training_share_off_the_hard_choice():
    model = _identity_prior_layer().eval()
    metric = PADDilationMetric()
    metric.bind(model)
    torch.manual_seed(0)
    with torch.no_grad():
        model(_image())
    metric.process({}, [None])
    metric.unbind()
    res = metric.evaluate(size=1)
    assert res['pad/p_max'] == pytest.approx(_p_max(), rel=1e-9)
    assert res['pad/0/p_max'] == pytest.approx(_p_max(), rel=1e-9)
    # hard eval samples nothing: one Gumbel-max draw per pixel stands in
    # for the training sample; 1e4 pixels
    assert res['pad/off_argmax'] == pytest.approx(1 - _p_max(), abs=0.015)


def test_training_share_is_counted_on_the_layers_own_samples():
    model = _identity_prior_layer().train()
    with PADRecorder(model) as rec:
        torch.manual_seed(0)
        with torch.no_grad():
            model(_image())
    sums = rec.pop_sums()['0']
    off = float(sums['sum_off'] / sums['count'])
    # the layer's own samples: argmax of the probabilities it mixed with
    assert off == pytest.approx(1 - _p_max(), abs=0.015)
    model[0].train_mode = 'gumbel_hard'
    with PADRecorder(model) as rec:
        with torch.no_grad():
            model(_image())
    sums = rec.pop_sums()['0']
    assert float(sums['sum_off'] / sums['count']) == pytest.approx(
        1 - _p_max(), abs=0.015)


def test_hook_logs_training_statistics_every_interval():
    model = _identity_prior_layer().train()
    hub = MessageHub.get_instance('pad_mm_training_share_stats')
    runner = SimpleNamespace(model=model, message_hub=hub, iter=0)
    hook = PADDilationStatsHook(train_interval=2)
    logged = []
    for it in range(4):
        runner.iter = it
        hook.before_train_iter(runner, it)
        with torch.no_grad():
            model(_image())
        hook.after_train_iter(runner, it)
        buf = hub.log_scalars.get('train/pad/train_p_max')
        logged.append(0 if buf is None else len(buf.data[0]))
    # the 2nd and 4th iterations (every_n_train_iters counts iter + 1)
    assert logged == [0, 1, 1, 2]
    p_max = hub.log_scalars['train/pad/train_p_max'].current()
    off = hub.log_scalars['train/pad/train_off_argmax'].current()
    assert p_max == pytest.approx(_p_max(), rel=1e-6)
    assert off == pytest.approx(1 - _p_max(), abs=0.015)
    assert 'train/pad/train_var_dilation' in hub.log_scalars
    with pytest.raises(ValueError, match='train_interval'):
        PADDilationStatsHook(train_interval=0)
