"""A trained PAD VGG / Xception given through init_cfg keeps its priors
(loading never overwrites what it loaded)."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from helpers.models import initial_logits


def _build(cfg):
    init_default_scope('mmseg')
    return MODELS.build(cfg)


CASES = {
    'vgg': (dict(base_type='VGG', depth=11, with_fc=False,
                 out_indices=(4, )),
            dict(layers='conv5_*', aggregation='gated')),
    'xception': (dict(base_type='Xception65', out_indices=(3, )),
                 dict(layers=['blocks.20.stack.conv?.conv_dw'])),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_trained_priors_survive_init_cfg(name, tmp_path):
    kwargs, pad_cfg = CASES[name]
    trained = _build(dict(type='PADBackbone', pad_cfg=pad_cfg, **kwargs))
    torch.manual_seed(0)
    with torch.no_grad():  # "trained": priors and tau away from their init
        for k, v in trained.state_dict().items():
            if '.prior.' in k:
                v.normal_()
    for m in trained.modules():
        if hasattr(m, 'prior'):
            m.tau = 0.3
    path = tmp_path / f'{name}.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in
                               trained.state_dict().items()}}, path)

    model = _build(dict(
        type='PADBackbone', pad_cfg=pad_cfg,
        init_cfg=dict(type='Pretrained', checkpoint=str(path),
                      prefix='backbone.'), **kwargs))
    model.init_weights()
    got = model.state_dict()
    prior_keys = [k for k in got if '.prior.' in k]
    assert prior_keys
    for k, v in trained.state_dict().items():
        assert torch.equal(got[k], v), k
    assert all(m.tau == pytest.approx(0.3) for m in model.modules()
               if hasattr(m, 'prior'))


def test_imagenet_checkpoint_leaves_priors_at_init(tmp_path):
    vanilla = _build(dict(type='VGG', depth=11, with_fc=False,
                          out_indices=(4, )))
    path = tmp_path / 'vgg.pth'
    torch.save(vanilla.state_dict(), path)
    model = _build(dict(
        type='PADBackbone', base_type='VGG', depth=11, with_fc=False,
        out_indices=(4, ),
        pad_cfg=dict(layers='conv5_*'),
        init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    with torch.no_grad():  # anything the init must undo
        model.conv5_1.prior.input_weight.fill_(1.0)
    model.init_weights()
    assert torch.count_nonzero(model.conv5_1.prior.input_weight) == 0
    assert initial_logits(model.conv5_1.prior) == [1.0, -1.0, -1.0]
    assert torch.equal(model.conv5_1.weight, vanilla.conv5_1.weight)
