"""A PAD checkpoint with a vanilla config, or the reverse, is refused by
tools/test.py's pre-flight and by pad_mm's init_model / load_model, with one
line naming both sides (before: the vanilla model ran, the priors dropped)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import pad_mm.seg  # noqa: F401
from pad_mm.apis import load_model
from pad_mm.apis.pad_match import (check_pad_match, config_is_pad,
                                   pad_prior_layers)
from pad_mm.models import PADConfigError

from helpers.tools import load_tool

PAD_CFG = 'configs/demo/pad_deeplabv3plus_r18_textures.py'
REG_CFG = 'configs/demo/deeplabv3plus_r18_textures.py'


def test_prior_layers_and_config_kind():
    keys = ['module.backbone.layer4.0.conv1.prior.input_weight',
            'backbone.layer4.0.conv1.prior.act.log_scale',
            'backbone.layer4.1.conv2.prior.input_bias', 'head.conv.weight']
    assert pad_prior_layers(keys) == ['backbone.layer4.0.conv1',
                                      'backbone.layer4.1.conv2']
    assert config_is_pad(dict(model=dict(backbone=dict(type='PADBackbone'))))
    assert config_is_pad([dict(type='x'), dict(conv_cfg=dict(
        type='PADConv'))])
    assert not config_is_pad(dict(model=dict(backbone=dict(type='ResNet'))))
    # matching kinds pass
    check_pad_match(True, ['a'], {'a.prior.input_bias': 0}, 'c.py', 'k.pth')
    check_pad_match(False, [], {'a.weight': 0}, 'c.py', 'k.pth')


def _checkpoint(repo_root, tmp_path, rel):
    model, _ = load_model(Config.fromfile(osp.join(repo_root, rel)))
    path = str(tmp_path / (osp.basename(rel) + '.pth'))
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    return path


def test_load_model_refuses_a_pad_vanilla_mismatch(repo_root, tmp_path):
    pad_ckpt = _checkpoint(repo_root, tmp_path, PAD_CFG)
    reg_ckpt = _checkpoint(repo_root, tmp_path, REG_CFG)
    with pytest.raises(PADConfigError, match='it is a PAD model') as e:
        load_model(osp.join(repo_root, REG_CFG), pad_ckpt)
    msg = str(e.value)
    assert '\n' not in msg
    assert pad_ckpt in msg and 'deeplabv3plus_r18_textures.py' in msg
    assert 'layer4.0.conv1' in msg
    with pytest.raises(PADConfigError, match='it is a vanilla model') as e:
        load_model(osp.join(repo_root, PAD_CFG), reg_ckpt)
    assert reg_ckpt in str(e.value) and 'PAD layers' in str(e.value)
    # the right pairs load
    load_model(osp.join(repo_root, PAD_CFG), pad_ckpt)
    load_model(osp.join(repo_root, REG_CFG), reg_ckpt)
    # tools/test.py refuses before building a runner
    tool = load_tool(repo_root, 'test.py')
    with pytest.raises(PADConfigError, match='it is a PAD model'):
        tool.main([osp.join(repo_root, REG_CFG), pad_ckpt, '--work-dir',
                   str(tmp_path / 't')])
    with pytest.raises(PADConfigError, match='it is a vanilla model'):
        tool.main([osp.join(repo_root, PAD_CFG), reg_ckpt, '--work-dir',
                   str(tmp_path / 't')])
