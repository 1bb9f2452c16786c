"""The conversion report: what was built is what was asked."""
import logging
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.models import convert_to_pad, format_pad_report, pad_report

MOBILENET = ('configs/pad_deeplabv3plus/'
             'pad_deeplabv3plus_mobilenet-v2-d16_4xb2-80k_cityscapes-'
             '512x1024.py')


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _build_backbone(cfg):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    bb = dict(cfg.model.backbone)
    bb.pop('init_cfg', None)
    bb['norm_cfg'] = dict(type='BN', requires_grad=False)
    return MODELS.build(bb)


@pytest.mark.parametrize('mode,want', [
    ('relative', {'layer6.0.conv.1.conv': [2, 4, 8],
                  'layer6.1.conv.1.conv': [1, 2, 4],
                  'layer6.2.conv.1.conv': [1, 2, 4],
                  'layer7.0.conv.1.conv': [2, 4, 8]}),
    ('absolute', {'layer6.0.conv.1.conv': [1, 2, 4],
                  'layer6.1.conv.1.conv': [1, 2, 4],
                  'layer6.2.conv.1.conv': [1, 2, 4],
                  'layer7.0.conv.1.conv': [1, 2, 4]})])
def test_report_lists_mobilenet_options_exactly(repo_root, mode, want):
    cfg = Config.fromfile(osp.join(repo_root, MOBILENET))
    if mode == 'absolute':
        cfg.model.backbone.pad_cfg.dilation_mode = 'absolute'
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    try:
        backbone = _build_backbone(cfg)
    finally:
        logger.removeHandler(handler)
    rows = pad_report(backbone)
    assert {r['layer']: r['dilations'] for r in rows} == want
    native = {r['layer']: r['native_dilation'] for r in rows}
    assert native == {'layer6.0.conv.1.conv': 2, 'layer6.1.conv.1.conv': 1,
                      'layer6.2.conv.1.conv': 1, 'layer7.0.conv.1.conv': 2}
    for r in rows:
        assert r['aggregation'] == 'markov' and r['f'] == 'ScaledTanh'
        assert r['f_bound'] == 2.0  # a fresh layer: s = s0
        assert r['tau'] == 1.0 and r['dilation_mode'] == mode
        assert r['chain'] == 'layer6.*.conv.1.conv,layer7.*.conv.1.conv'
    # logged once, at build time, as one table
    tables = [m for m in handler.lines if 'PAD conversion of' in m]
    assert len(tables) == 1
    table = tables[0].splitlines()
    assert table[1].split() == ['PAD', 'layer', 'chain', 'native', 'd',
                                'options', '(abs)', 'aggregation', 'f',
                                'f', 'bound', 'tau']
    row = next(line for line in table if line.startswith('layer6.0'))
    assert ('(2, 4, 8)' if mode == 'relative' else '(1, 2, 4)') in row
    # and the config comment says what the relative build gives
    text = open(osp.join(repo_root, MOBILENET)).read()
    assert 'layer6.0, layer7.0 (native dilation 2): (2, 4, 8)' in text
    assert 'layer6.1, layer6.2 (native dilation 1): (1, 2, 4)' in text


def test_report_rows_for_a_chain():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1),
                        nn.Conv2d(4, 4, 3, padding=2, dilation=2))
    convert_to_pad(net, dict(layers=['0', '1'], aggregation='recurrent',
                             name='c', tau=0.5))
    rows = pad_report(net)
    assert rows == [
        dict(layer='0', chain='c', chain_index=0, native_dilation=1,
             dilations=[1, 2, 4], dilation_mode='relative',
             aggregation='recurrent', f='ScaledTanh', f_bound=2.0,
             init_margin=2.0, tau=0.5),
        dict(layer='1', chain='c', chain_index=1, native_dilation=2,
             dilations=[2, 4, 8], dilation_mode='relative',
             aggregation='recurrent', f='ScaledTanh', f_bound=2.0,
             init_margin=2.0, tau=0.5)]
    text = format_pad_report(rows)
    assert 'c[1]' in text and '(2, 4, 8)' in text and 'ScaledTanh' in text
    # the learnable part of f is reported as it is now
    with torch.no_grad():
        net[1].prior.act.log_scale.fill_(math.log(3.0))
    assert pad_report(net)[1]['f_bound'] == pytest.approx(6.0)
    assert '6' in format_pad_report(pad_report(net)).splitlines()[-1]
