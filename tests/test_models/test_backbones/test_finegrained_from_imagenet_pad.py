"""Fine-grained PAD configs use the paper's options (1, 2, 3) and start from
ImageNet PAD checkpoints trained with (1, 2, 4): the conv weights load, the
priors (whose meaning changed) are re-initialised, never silently reused."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import pad_mm.cls  # noqa: F401  (registers pad_mm for mmpretrain)
import pad_mm.seg  # noqa: F401  (and for mmseg)
from pad_mm.models.layers.pad_conv import PADCheckpointMismatchError
from helpers.models import initial_logits

FG = 'configs/pad_finegrained/pad_resnet50_8xb32-120e_aircraft-224px.py'
IN1K = 'configs/pad_imagenet/pad_resnet50_8xb24-120e_in1k.py'


def _backbone(repo_root, rel, **overrides):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(repo_root, rel))
    init_default_scope('mmpretrain')
    bb = copy.deepcopy(cfg.model.backbone)
    bb.update(overrides)
    return MODELS.build(bb), cfg


def test_finegrained_resnet50_reinitialises_mismatched_priors(repo_root,
                                                              tmp_path):
    imagenet, _ = _backbone(repo_root, IN1K, init_cfg=None)
    torch.manual_seed(0)
    with torch.no_grad():  # "trained" ImageNet PAD weights
        for k, v in imagenet.state_dict().items():
            if v.is_floating_point() and not k.endswith('pad_tau'):
                v.normal_()
    path = tmp_path / 'pad_resnet50_in1k.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in
                               imagenet.state_dict().items()}}, path)

    _, fg_cfg = _backbone(repo_root, FG, init_cfg=None)
    pad_cfg = fg_cfg.model.backbone.pad_cfg
    assert tuple(pad_cfg.dilations) == (1, 2, 3)  # Table 10
    assert pad_cfg.reinit_priors_on_mismatch is True
    init = dict(fg_cfg.model.backbone.init_cfg, checkpoint=str(path))
    model, _ = _backbone(repo_root, FG, init_cfg=init)
    model.init_weights()
    for name in ('layer2.1.conv2', 'layer2.2.conv2', 'layer2.3.conv2'):
        layer = model.get_submodule(name)
        src = imagenet.get_submodule(name)
        assert layer.pad_dilations.tolist() == [1, 2, 3]
        assert torch.equal(layer.weight, src.weight)  # conv loaded
        assert torch.count_nonzero(layer.prior.input_weight) == 0
        assert initial_logits(layer.prior) == [1.0, -1.0, -1.0]
    # every other weight came from the checkpoint
    assert torch.equal(model.layer4[2].conv3.weight,
                       imagenet.layer4[2].conv3.weight)

    # without the flag the same load refuses, naming layer and both sets
    init_strict = dict(init)
    strict_pad = dict(pad_cfg, reinit_priors_on_mismatch=False)
    model, _ = _backbone(repo_root, FG, init_cfg=init_strict,
                         pad_cfg=strict_pad)
    with pytest.raises(PADCheckpointMismatchError,
                       match=r"layer2\.1\.conv2.*\(1, 2, 4\).*\(1, 2, 3\)"):
        model.init_weights()
