"""DRN backbone: published sizes, strides, registries, PAD placement,
checkpoint loading."""
import pytest
import torch
import torch.nn as nn
from mmengine.registry import MODELS, init_default_scope

import pad_mm.cls  # noqa: F401  (registers pad_mm for mmpretrain)
import pad_mm.seg  # noqa: F401  (and for mmseg)
from pad_mm.models import PADConv2d
from pad_mm.models.backbones.drn import DRN


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


# Source: github.com/fyu/drn README (ImageNet models table) and the PAD-Nets
# paper, Table 6 (DRN-C-26 21.1M); counts include the 1000-class classifier
# (512 -> 1000 1x1 conv: 513,000 parameters).
@pytest.mark.parametrize('arch,published', [('C-26', 21.1e6),
                                            ('C-42', 31.2e6),
                                            ('D-22', 16.4e6),
                                            ('D-54', 35.8e6)])
def test_drn_param_counts_match_published(arch, published):
    n = _n_params(DRN(arch=arch)) + 512 * 1000 + 1000
    assert abs(n - published) / published < 0.005, (arch, n)


def test_drn_c26_layout():
    m = DRN('C-26')
    assert m.layer_channels == (16, 32, 64, 128, 256, 512, 512, 512)
    names = [n for n, c in m.named_modules() if isinstance(c, nn.Conv2d)]
    assert names[0] == 'conv1'
    assert [n for n in names if n.startswith('layer8')] == [
        'layer8.0.conv1', 'layer8.0.conv2']
    # degridding blocks of DRN-C have no residual path
    assert not m.layer7[0].residual and not m.layer8[0].residual
    assert m.layer5[0].conv1.dilation == (2, 2)
    assert m.layer6[0].conv2.dilation == (4, 4)
    assert m.layer7[0].conv1.dilation == (2, 2)
    assert m.layer8[0].conv1.dilation == (1, 1)


@pytest.mark.parametrize('output_stride,size,expected', [
    (8, 64, [(16, 64), (32, 32), (256, 16), (512, 8), (1024, 8), (2048, 8),
             (512, 8), (512, 8)]),
    (16, 65, [(16, 65), (32, 33), (256, 17), (512, 9), (1024, 5), (2048, 5),
              (512, 5), (512, 5)]),
])
def test_drn_d54_strides_channels(output_stride, size, expected):
    m = DRN('D-54', out_indices=tuple(range(8)),
            output_stride=output_stride).eval()
    with torch.no_grad():
        outs = m(torch.randn(1, 3, size, size))
    assert isinstance(outs, tuple) and len(outs) == 8
    assert [(o.shape[1], o.shape[2]) for o in outs] == expected
    assert m.out_channels == tuple(c for c, _ in expected)
    if output_stride == 16:
        assert m.layer5[0].conv2.stride == (2, 2)
        assert m.layer5[0].conv2.dilation == (1, 1)
        assert m.layer6[0].conv2.dilation == (2, 2)
        assert m.layer7[0].dilation == (1, 1)


def test_drn_out_indices_select_and_order():
    m = DRN('C-26', out_indices=(2, -1)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a = m(x)
        full = DRN('C-26', out_indices=tuple(range(8)))
        full.load_state_dict(m.state_dict())
        b = full.eval()(x)
    assert m.out_indices == (2, 7) and m.out_channels == (64, 512)
    assert torch.equal(a[0], b[2]) and torch.equal(a[1], b[7])


@pytest.mark.parametrize('kwargs,match', [
    (dict(arch='C-27'), 'arch'),
    (dict(arch='c26'), 'arch'),
    (dict(output_stride=32), 'output_stride'),
    (dict(out_indices=(8, )), 'out_indices'),
    (dict(out_indices=()), 'out_indices'),
    (dict(pretrained='a.pth', init_cfg=dict(type='Pretrained',
                                            checkpoint='b.pth')), 'either'),
])
def test_drn_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DRN(**kwargs)


@pytest.mark.parametrize('scope', ['mmseg', 'mmpretrain'])
def test_drn_registered_and_pad_placement(scope):
    init_default_scope(scope)
    m = MODELS.build(dict(type='DRN', arch='D-22', out_indices=(7, )))
    assert type(m) is DRN
    pad = MODELS.build(
        dict(type='PADBackbone', base_type='DRN', arch='D-22',
             pad_cfg=dict(layers=['layer7.*', 'layer8.*'],
                          dilations=(1, 2, 4), aggregation='markov')))
    pads = [n for n, c in pad.named_modules()
            if isinstance(c, PADConv2d) and c.adaptive]
    assert pads == ['layer7.0', 'layer8.0']
    assert pad.layer7[0].abs_dilations == (2, 4, 8)
    pad_c = MODELS.build(
        dict(type='PADBackbone', base_type='DRN', arch='C-26',
             pad_cfg=dict(layers='layer8.*.conv?')))
    assert [n for n, c in pad_c.named_modules()
            if isinstance(c, PADConv2d)] == ['layer8.0.conv1',
                                               'layer8.0.conv2']


def test_drn_pad_hard_eval_equals_vanilla_at_init():
    torch.manual_seed(0)
    init_default_scope('mmpretrain')
    vanilla = DRN('C-26').eval()
    pad = MODELS.build(dict(type='PADBackbone', base_type='DRN',
                            arch='C-26',
                            pad_cfg=dict(layers='layer8.*.conv?')))
    missing, unexpected = pad.load_state_dict(vanilla.state_dict(),
                                              strict=False)
    assert not unexpected and all('.prior.' in k for k in missing)
    pad.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(pad(x)[0], vanilla(x)[0])


def _official_state(model):
    """A state dict in the official drn_*.pth layout: backbone keys as in
    the reference module plus its 1x1-conv classifier ``fc``."""
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd['fc.weight'] = torch.randn(1000, 512, 1, 1)
    sd['fc.bias'] = torch.randn(1000)
    return sd


def test_drn_loads_official_and_mmpretrain_checkpoints(tmp_path):
    src = DRN('C-26')
    for p in src.parameters():
        p.data.normal_()
    official = tmp_path / 'drn_c_26-ddedf421.pth'
    torch.save(_official_state(src), official)
    m = DRN('C-26', init_cfg=dict(type='Pretrained',
                                  checkpoint=str(official)))
    assert not torch.equal(m.layer8[0].conv2.weight,
                           src.layer8[0].conv2.weight)
    m.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(m.state_dict()[k], v), k

    # mmpretrain classifier checkpoint: 'backbone.' prefix detected
    wrapped = tmp_path / 'cls.pth'
    torch.save({'state_dict': {'backbone.' + k: v for k, v in
                               src.state_dict().items()} |
                {'head.fc.weight': torch.zeros(3, 512)}}, wrapped)
    m2 = DRN('C-26', pretrained=str(wrapped))
    m2.init_weights()
    assert torch.equal(m2.conv1.weight, src.conv1.weight)

    # a PAD model loads the vanilla file: only the priors are missing
    init_default_scope('mmpretrain')
    pad = MODELS.build(dict(
        type='PADBackbone', base_type='DRN', arch='C-26',
        pad_cfg=dict(layers='layer8.*.conv?'),
        init_cfg=dict(type='Pretrained', checkpoint=str(official))))
    missing, unexpected = pad.load_pretrained(str(official))
    assert sorted(missing) == sorted(
        f'layer8.0.conv{i}.prior.{w}' for i in (1, 2)
        for w in ('input_weight', 'input_bias', 'act.log_scale'))
    assert unexpected == []
    assert torch.equal(pad.layer8[0].conv1.weight, src.layer8[0].conv1.weight)


def test_drn_missing_or_foreign_checkpoint(tmp_path):
    path = tmp_path / 'nope' / 'drn_c_26.pth'
    m = DRN('C-26', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(FileNotFoundError, match='drn_c_26.pth'):
        m.init_weights()
    foreign = tmp_path / 'foreign.pth'
    torch.save({'encoder.w': torch.zeros(1)}, foreign)
    m = DRN('C-26', init_cfg=dict(type='Pretrained', checkpoint=str(foreign)))
    with pytest.raises(ValueError, match='no DRN weights'):
        m.init_weights()
