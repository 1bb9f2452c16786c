"""The one PAD settings spec and its parser: typed results, one error type
naming the field path, the same rules for every reader, docs that follow
the spec."""
import dataclasses
import inspect
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.registry import init_default_scope

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.models import (PADConfigError, PADConv2d, PADSettings,
                           build_pad_backbone, convert_to_pad, pad_layers,
                           parse_pad_cfg, parse_settings, settings_table)
from pad_mm.models.layers.settings import UNSET, setting_specs
from pad_mm.models.pad_cfg import CHAIN_KEYS, PAD_CFG_KEYS


def _net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1),
                         nn.Conv2d(4, 4, 3, padding=1),
                         nn.Conv2d(4, 4, 1))


def test_defaults_are_typed_and_normalised():
    s = parse_settings({'dilations': [1, 3], 'init_margin': 3,
                        'act_cfg': {'type': 'ReLU'}})
    assert isinstance(s, PADSettings)
    assert s.dilations == (1, 3) and isinstance(s.dilations, tuple)
    assert s.init_margin == 3.0 and isinstance(s.init_margin, float)
    assert s.act_cfg == {'type': 'ReLU'}
    assert (s.tau, s.train_mode, s.eval_mode, s.aggregation, s.impl) == (
        1.0, 'gumbel', 'hard', 'markov', 'auto')
    # a dependent default (default_of) is UNSET in the dataclass and
    # resolved by the parser: ScaledTanh for the paper's aggregations,
    # the identity for 'static'
    assert PADSettings().act_cfg is UNSET
    assert parse_settings() == PADSettings(act_cfg=dict(type='ScaledTanh'))
    assert parse_settings(dict(aggregation='gated')).act_cfg == \
        dict(type='ScaledTanh')
    assert parse_settings(dict(aggregation='static')).act_cfg is None
    assert parse_settings(dict(tau=UNSET)).tau == 1.0


@pytest.mark.parametrize('pad_cfg,field,value,allowed', [
    ([dict(layers='0'), dict(layers='1', dilations=(1, 1))],
     'pad_cfg[1].dilations', '(1, 1)', 'distinct'),
    (dict(layers='0', init_dilation=8), 'pad_cfg.init_dilation', '8',
     'one of dilations=(1, 2, 4)'),
    (dict(layers='0', act_cfg=dict(type='NoSuchAct')),
     'pad_cfg.act_cfg.type', "'NoSuchAct'", 'registered activation'),
    (dict(layers=['0', '0']), 'pad_cfg.layers', "['0', '0']", 'distinct'),
    ([dict(layers='0', name='c'), dict(layers='1', name='c')],
     'pad_cfg[1].name', "'c'", 'not used by another'),
    (dict(layers='0', dilation=2), 'pad_cfg.dilation', '2', "'dilations'"),
    ([], 'pad_cfg', '[]', 'non-empty list'),
])
def test_parser_names_field_value_and_allowed(pad_cfg, field, value,
                                              allowed):
    with pytest.raises(PADConfigError) as info:
        parse_pad_cfg(pad_cfg)
    err = info.value
    assert err.field == field
    assert value in str(err)
    assert allowed in err.allowed
    # the converter applies the very same rules
    with pytest.raises(PADConfigError) as info2:
        convert_to_pad(_net(), pad_cfg)
    assert info2.value.field == field


def test_error_path_prefix_and_pickling():
    import pickle
    err = PADConfigError('pad_cfg[1].tau', 0, 'a finite number > 0')
    at = err.at('model.backbone')
    assert at.field == 'model.backbone.pad_cfg[1].tau'
    assert str(at).startswith('model.backbone.pad_cfg[1].tau=0')
    again = pickle.loads(pickle.dumps(at))
    assert (again.field, again.value, again.allowed) == (at.field, 0,
                                                         at.allowed)


def test_layer_uses_the_spec():
    # every setting is a keyword of PADConv2d with the spec's default
    params = inspect.signature(PADConv2d.__init__).parameters
    for spec in setting_specs():
        assert params[spec.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[spec.name].default == spec.default, spec.name
    layer = PADConv2d(3, 3, 3, padding=1, dilations=[1, 2])
    assert layer.settings == parse_settings(dict(dilations=(1, 2)))
    with pytest.raises(PADConfigError) as info:
        PADConv2d(3, 3, 3, padding=1, eval_mode='argmax')
    assert info.value.field == 'eval_mode'


def test_convert_places_chains_with_parsed_settings():
    net = convert_to_pad(_net(), [dict(layers='0', tau=0.5),
                                  dict(layers='1', name='b')])
    assert [n for n, _ in pad_layers(net)] == ['0', '1']
    assert net[0].tau == 0.5 and net[0].chain.name == '0'
    assert net[1].chain.name == 'b'
    with pytest.raises(PADConfigError) as info:
        convert_to_pad(_net(), dict(layers='2'))
    assert info.value.field == 'pad_cfg.layers'
    assert 'cannot be made adaptive' in str(info.value)


def test_pad_layers_unwraps_data_parallel():
    net = convert_to_pad(_net(), dict(layers='[01]'))
    wrapped = nn.DataParallel(net)
    assert [n for n, _ in pad_layers(wrapped)] == ['0', '1']
    assert all(isinstance(m, PADConv2d) and m.adaptive
               for _, m in pad_layers(wrapped))


def test_backbone_builds_on_meta_device():
    init_default_scope('mmseg')
    with torch.device('meta'):
        model = build_pad_backbone('ResNetV1c', dict(layers='layer4.*.conv2'),
                                   depth=18)
    names = [n for n, _ in pad_layers(model)]
    assert names == ['layer4.0.conv2', 'layer4.1.conv2']
    assert model.layer4[0].conv2.weight.is_meta
    with pytest.raises(PADConfigError) as info:
        build_pad_backbone('ResNetV9', dict(layers='x'))
    assert info.value.field == 'base_type'


def test_docs_table_is_the_spec(repo_root):
    # the PADConv2d argument table lives in the user guide
    guide = open(osp.join(repo_root, 'docs', 'user_guides',
                          'pad_layers.md')).read()
    assert settings_table() in guide
    names = [f.name for f in dataclasses.fields(PADSettings)]
    assert PAD_CFG_KEYS == tuple(CHAIN_KEYS) + tuple(names)
    for key in CHAIN_KEYS:
        assert f'`{key}`' in guide


def test_converting_twice_says_already_pad():
    net = convert_to_pad(_net(), dict(layers=['0', '1']))
    with pytest.raises(PADConfigError, match='already PAD') as e:
        convert_to_pad(net, dict(layers=['0', '1']))
    assert e.value.field == 'pad_cfg.layers' and e.value.value == '0'
    assert "['0']" in str(e.value)
    # a pattern that matches nothing at all still says so
    with pytest.raises(PADConfigError, match='matches no nn.Conv2d'):
        convert_to_pad(net, dict(layers='7'))
