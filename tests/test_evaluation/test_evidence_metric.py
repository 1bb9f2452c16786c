"""Metrics against a known right dilation per pixel
(pad_mm.evaluation.evidence): per-scale accuracy and the agreement of a
PAD layer's choice with the truth, on hand-made maps with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from pad_mm.evaluation import PADChoiceAgreementMetric, PADEvidenceMetric
from pad_mm.evaluation.evidence import (add_agreement_counts,
                                        agreement_counts,
                                        summarize_agreement, truth_on_grid)
from pad_mm.models import PADConv2d


def _truth(tmp_path, name='t.png', size=8):
    """Left half d = 1, top-right quarter d = 2, bottom-right d = 4."""
    t = np.ones((size, size), np.uint8)
    t[:size // 2, size // 2:] = 2
    t[size // 2:, size // 2:] = 4
    path = str(tmp_path / name)
    Image.fromarray(t).save(path)
    return t, path


def _sample(pred, label, path):
    return dict(pred_sem_seg=dict(data=torch.as_tensor(pred)[None]),
                gt_sem_seg=dict(data=torch.as_tensor(label)[None]),
                dil_map_path=path)


def test_truth_on_grid_takes_the_centres():
    t = np.arange(64).reshape(8, 8)
    assert truth_on_grid(t, (2, 2)).tolist() == [[18, 22], [50, 54]]
    assert truth_on_grid(t, (8, 8)).tolist() == t.tolist()
    with pytest.raises(ValueError, match='integer output stride'):
        truth_on_grid(t, (3, 3))


def test_agreement_and_best_constant():
    truth = np.array([[1, 1, 2, 4], [1, 1, 2, 4]])
    chosen = np.array([[1, 2, 2, 2], [1, 1, 2, 1]])
    counts = agreement_counts(chosen, truth)
    assert counts == {1: (3, 4), 2: (2, 2), 4: (0, 2)}
    s = summarize_agreement(counts, (1, 2, 4))
    assert s['agree'] == pytest.approx(5 / 8)
    assert (s['agree_d1'], s['agree_d2'], s['agree_d4']) == (0.75, 1.0, 0.0)
    assert s['agree_const'] == 0.5 and s['const_d'] == 1.0
    # options (1, 2): the d = 4 pixels cannot agree, for either
    s12 = summarize_agreement({1: (0, 1), 2: (0, 1), 4: (0, 6)}, (1, 2))
    assert s12['agree_const'] == pytest.approx(1 / 8)


def test_evidence_metric_accuracy_per_true_scale(tmp_path):
    t, path = _truth(tmp_path)
    label = np.zeros((8, 8), np.int64)
    pred = label.copy()
    pred[:, :2] = 1          # a quarter of the d = 1 pixels wrong
    pred[:4, 4:] = 3         # all d = 2 pixels wrong
    metric = PADEvidenceMetric()
    metric.process({}, [_sample(pred, label, path)])
    out = metric.compute_metrics(metric.results)
    assert out['acc_d1'] == pytest.approx(50.0)
    assert out['acc_d2'] == pytest.approx(0.0)
    assert out['acc_d4'] == pytest.approx(100.0)
    assert out['acc'] == pytest.approx(100.0 * 32 / 64)


def test_evidence_metric_needs_the_dilation_path():
    metric = PADEvidenceMetric()
    s = _sample(np.zeros((4, 4)), np.zeros((4, 4)), None)
    del s['dil_map_path']
    with pytest.raises(KeyError, match='dil_map_path'):
        metric.process({}, [s])


class _Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.down = nn.AvgPool2d(4)
        # priors start favouring d = 2 at every pixel (hard eval picks it)
        self.conv = PADConv2d(3, 3, 3, padding=1, dilations=(1, 2, 4),
                             init_dilation=2)

    def forward(self, x):
        return self.conv(self.down(x))


def test_choice_agreement_metric_on_a_layer_that_picks_d2(tmp_path):
    t, path = _truth(tmp_path, size=16)
    net = _Net().eval()
    metric = PADChoiceAgreementMetric()
    metric.bind(net)
    label = np.zeros((16, 16), np.int64)
    for _ in range(2):
        with torch.no_grad():
            net(torch.randn(1, 3, 16, 16))
        metric.process({}, [_sample(label, label, path)])
    metric.unbind()
    out = metric.compute_metrics(metric.results)
    # 4x4 map: 8 pixels d = 1, 4 d = 2, 4 d = 4; the layer picks 2
    assert out['conv/agree_d2'] == 1.0 and out['conv/agree_d1'] == 0.0
    assert out['conv/agree_d4'] == 0.0
    assert out['conv/agree'] == pytest.approx(0.25)
    assert out['conv/agree_const'] == pytest.approx(0.5)
    assert out['conv/const_d'] == 1.0
    assert out['agree'] == pytest.approx(0.25)
    # and the dilation statistics of PADDilationMetric are still there
    assert out['conv/frac_d2'] == 1.0


def test_choice_agreement_metric_refuses_several_forwards(tmp_path):
    t, path = _truth(tmp_path, size=16)
    net = _Net().eval()
    metric = PADChoiceAgreementMetric()
    metric.bind(net)
    with torch.no_grad():
        net(torch.randn(1, 3, 16, 16))
        net(torch.randn(1, 3, 16, 16))
    with pytest.raises(RuntimeError, match='forward passes'):
        metric.process({}, [_sample(np.zeros((16, 16)), np.zeros((16, 16)),
                                    path)])


def _run(root, config, seed, records, stamp='20260101_000000'):
    import json
    import os
    d = root / config / f'seed_{seed}' / stamp / 'vis_data'
    os.makedirs(d)
    with open(d / 'scalars.json', 'w') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')


def test_collect_runs_and_table(tmp_path):
    from pad_mm.evaluation.evidence import collect_runs, evidence_table
    train = {'loss': 1.0, 'step': 10}
    _run(tmp_path, 'vanilla', 0, [train, {'mIoU': 50.0, 'evidence/acc_d1':
                                          90.0, 'step': 10}])
    _run(tmp_path, 'vanilla', 1, [{'mIoU': 10.0, 'step': 5}, train,
                                  {'mIoU': 60.0, 'evidence/acc_d1': 80.0,
                                   'step': 10}])
    _run(tmp_path, 'pad', 0, [{'mIoU': 70.0, 'pad/agree': 0.5,
                               'pad/agree_const': 0.4, 'step': 10}])
    # a run without a validation yet is left out
    _run(tmp_path, 'pad', 1, [train])
    runs = collect_runs(str(tmp_path))
    assert sorted(runs) == ['pad', 'vanilla']
    assert sorted(runs['vanilla']) == [0, 1] and sorted(runs['pad']) == [0]
    assert runs['vanilla'][1]['mIoU'] == 60.0
    table = evidence_table(runs).splitlines()
    row = {ln.split(' | ')[0][2:]: ln.split(' | ') for ln in table[2:]}
    assert row['vanilla'][1] == '55.0 ± 7.1 (2)'
    assert row['vanilla'][3] == '85.0 ± 7.1 (2)'
    assert row['pad'][1] == '70.0 (seed 0)'
    assert row['pad'][6] == '50.0 (seed 0)'
    assert row['pad'][7].rstrip(' |') == '40.0 (seed 0)'
    assert row['vanilla'][6] == '—'


def test_layer_agreement_table_means_over_seeds(tmp_path):
    from pad_mm.evaluation.evidence import (collect_runs,
                                            layer_agreement_table)
    lay = 'pad/backbone.convs.1.conv/'
    _run(tmp_path, 'pad', 0, [{'mIoU': 70.0, 'pad/agree': 0.5,
                               lay + 'agree': 0.5, lay + 'agree_d4': 0.9,
                               lay + 'frac_d4': 0.8, lay + 'p_max': 0.7,
                               'step': 10}])
    _run(tmp_path, 'pad', 1, [{'mIoU': 60.0, 'pad/agree': 0.3,
                               lay + 'agree': 0.3, lay + 'agree_d4': 0.7,
                               lay + 'frac_d4': 0.6, 'step': 10}])
    _run(tmp_path, 'vanilla', 0, [{'mIoU': 50.0, 'step': 10}])
    table = layer_agreement_table(collect_runs(str(tmp_path))).splitlines()
    assert table[0].startswith('| config | layer | agreement | on d=1 |')
    assert len(table) == 3  # header, rule, one PAD layer; no vanilla row
    cells = [c.strip() for c in table[2].strip('|').split('|')]
    assert cells[:3] == ['pad', 'backbone.convs.1.conv', '40.0']
    assert cells[3] == '—' and cells[5] == '80.0'  # agree_d1 absent; d4
    assert cells[9] == '70.0' and cells[10] == '70.0'  # frac_d4; p_max
    assert cells[-1] == '2'


def test_add_agreement_counts_sums_per_true_dilation():
    acc = {}
    add_agreement_counts(acc, agreement_counts(np.array([[1, 2]]),
                                               np.array([[1, 1]])))
    add_agreement_counts(acc, agreement_counts(np.array([[4, 4]]),
                                               np.array([[1, 4]])))
    assert acc == {1: (1, 3), 4: (1, 1)}
