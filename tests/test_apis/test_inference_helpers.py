"""pad_mm.apis: the input shape the tools default to, and loading a PAD
model with the regular one it is compared with."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.apis import (ComparedModel, default_input_shape,
                         load_model, load_pad_and_baseline)
from pad_mm.models import pad_layers

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
PAD_CFG = osp.join(ROOT, 'configs', 'demo',
                   'pad_deeplabv3plus_r18_textures.py')
REG_CFG = osp.join(ROOT, 'configs', 'demo', 'deeplabv3plus_r18_textures.py')


def test_default_input_shape_by_task_and_config():
    seg = dict(default_scope='mmseg', model=dict(type='EncoderDecoder'))
    assert default_input_shape(Config(seg)) == (512, 512)
    assert default_input_shape(Config(dict(seg, crop_size=(64, 96)))) == \
        (64, 96)
    assert default_input_shape(Config(dict(
        seg, crop_size=(64, 96), model=dict(data_preprocessor=dict(
            size=(32, 48)))))) == (32, 48)
    cls = dict(default_scope='mmpretrain', crop_size=(64, 64), model=dict())
    assert default_input_shape(Config(cls)) == (224, 224)
    with pytest.raises(ValueError, match='default_scope'):
        default_input_shape(Config(dict(default_scope='mmdet', model={})))


def test_load_pad_and_baseline_labels_both_models(tmp_path):
    (pad, ) = load_pad_and_baseline(PAD_CFG, None)
    assert isinstance(pad, ComparedModel)
    assert (pad.label, pad.config, pad.checkpoint) == ('PAD', PAD_CFG, None)
    assert list(pad_layers(pad.model)) and not pad.model.training
    torch.manual_seed(0)
    reg_model, _ = load_model(REG_CFG)
    ckpt = str(tmp_path / 'regular.pth')
    torch.save({'state_dict': reg_model.state_dict()}, ckpt)
    torch.manual_seed(1)  # other initial weights: the checkpoint must win
    models = load_pad_and_baseline(PAD_CFG, None, REG_CFG, ckpt)
    assert [m.label for m in models] == ['PAD', 'regular']
    reg = models[1]
    assert (reg.config, reg.checkpoint) == (REG_CFG, ckpt)
    assert reg.cfg.model.backbone.type != 'PADBackbone'
    assert list(pad_layers(reg.model)) == [] and not reg.model.training
    want = reg_model.state_dict()
    assert all(torch.equal(v, want[k])
               for k, v in reg.model.state_dict().items())


def test_load_pad_and_baseline_needs_config_and_checkpoint_together():
    for cfg, ckpt in ((REG_CFG, None), (None, 'regular.pth')):
        with pytest.raises(ValueError) as info:
            load_pad_and_baseline(PAD_CFG, None, cfg, ckpt)
        assert 'baseline_config and baseline_checkpoint go together' in \
            str(info.value)
