"""Runtime plumbing: the import-time mmengine patch can be turned off, and
the checked pretrained initializer keeps upstream's 'loads last' order
under its own name."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS as SEG_MODELS

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.registry import WEIGHT_INITIALIZERS

PROBE = ('import logging, sys; logging.basicConfig(level=logging.INFO, '
         'stream=sys.stdout); import mmengine.runner.checkpoint as c, '
         'torch, pad_mm.seg, pad_mm.runtime as r; '
         "print('PATCHED' if c.torch is not torch else 'PLAIN', "
         'r.compat_patches_applied())')


def _probe(repo_root, **extra):
    env = {k: v for k, v in os.environ.items() if k != 'PAD_MM_NO_PATCH'}
    env.update(PYTHONPATH=repo_root, **extra)
    out = subprocess.run([sys.executable, '-c', PROBE], env=env, text=True,
                         capture_output=True, timeout=120, check=True)
    return out.stdout


def test_import_patches_once_with_info_log_and_can_be_turned_off(repo_root):
    on = _probe(repo_root)
    assert 'PATCHED True' in on
    assert on.count('PAD_MM_NO_PATCH=1 to turn this off') == 1
    off = _probe(repo_root, PAD_MM_NO_PATCH='1')
    assert 'PLAIN False' in off
    assert 'turn this off' not in off


def test_upstream_pretrained_is_not_shadowed():
    from mmengine.model.weight_init import PretrainedInit

    from pad_mm.models.backbones.pretrained import CheckedPretrainedInit
    init_default_scope('mmseg')
    with WEIGHT_INITIALIZERS.switch_scope_and_registry('mmseg') as reg:
        assert reg.get('Pretrained') is PretrainedInit
        assert reg.get('CheckedPretrained') is CheckedPretrainedInit


def test_checked_pretrained_loads_after_children_init(tmp_path):
    """mmseg's MobileNetV2 is built of ConvModules whose init_weights
    re-initialise their convs: the checkpoint must still win."""
    init_default_scope('mmseg')
    src = SEG_MODELS.build(dict(type='MobileNetV2'))
    torch.manual_seed(3)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v
             for k, v in src.state_dict().items()}
    path = tmp_path / 'mnv2.pth'
    torch.save(state, path)
    model = SEG_MODELS.build(dict(type='MobileNetV2', init_cfg=dict(
        type='CheckedPretrained', checkpoint=str(path))))
    model.init_weights()
    got = model.state_dict()
    for k, v in state.items():
        assert torch.equal(got[k], v), k
    missing = SEG_MODELS.build(dict(type='MobileNetV2', init_cfg=dict(
        type='CheckedPretrained', checkpoint=str(tmp_path / 'none.pth'))))
    with pytest.raises(FileNotFoundError, match='none.pth'):
        missing.init_weights()
