"""The backbones pad_mm adds for the segmentation zoo (VGG-16, Xception-65):
published parameter counts, PAD adds only prior parameters, the usual
ImageNet checkpoint formats load, a missing checkpoint file is a clear error,
bad arguments are named."""
import pytest
import torch

from helpers.models import build_seg as _build, initial_logits
from helpers.models import numel as _numel

def test_backbone_parameter_counts():
    # VGG-16 (Simonyan & Zisserman 2014, config D): torchvision's vgg16 has
    # 138,357,544 parameters; minus fc8 (4096 * 1000 + 1000 = 4,097,000)
    # this is the FCN backbone conv1_1..conv5_3 + fc6 + fc7.
    assert _numel(_build(dict(type='VGG', depth=16), meta=True)) == \
        138_357_544 - 4_097_000
    assert _numel(_build(dict(type='VGG', depth=16, with_fc=False,
                              out_indices=(4, )), meta=True)) == 14_714_688
    # Aligned Xception-65 (DeepLabV3+): timm 1.0's ``xception65`` (a port of
    # TF DeepLab's xception_65) has 39,916,312 parameters; minus its
    # 2048 * 1000 + 1000 = 2,049,000 classifier.
    assert _numel(_build(dict(type='Xception65'), meta=True)) == \
        39_916_312 - 2_049_000


@pytest.mark.parametrize('agg', ['markov', 'recurrent', 'gated'])
def test_pad_adds_only_prior_parameters_to_new_backbones(agg):
    d = 3
    vgg = _build(dict(type='PADBackbone', base_type='VGG', depth=16,
                      pad_cfg=dict(layers=['conv5_*'], aggregation=agg)),
                 meta=True)
    c = 512  # conv5_1..conv5_3 inputs
    # + 1 per layer: rho of the default f (ScaledTanh)
    per_layer = {'markov': d * c + d,
                 'recurrent': d * c + d + d * d + d,
                 'gated': 2 * (d * c + d) + 2 * d * d + d}[agg] + 1
    assert _numel(vgg) - (138_357_544 - 4_097_000) == 3 * per_layer
    xc = _build(dict(type='PADBackbone', base_type='Xception65',
                     pad_cfg=dict(layers=['blocks.20.stack.conv?.conv_dw'],
                                  aggregation=agg)), meta=True)
    ins = (1024, 1536, 1536)  # inputs of block 20's depthwise convs
    per = {'markov': lambda c: d * c + d + 1,
           'recurrent': lambda c: d * c + 2 * d + d * d + 1,
           'gated': lambda c: 2 * (d * c + d) + 2 * d * d + d + 1}[agg]
    assert _numel(xc) - (39_916_312 - 2_049_000) == sum(per(c) for c in ins)


def test_vgg_loads_torchvision_checkpoint(tmp_path):
    """torchvision's vgg16 state dict (features.N, classifier.0/3 Linear)
    loads into VGG and into a PAD-converted VGG; fc6/fc7 become convs."""
    import torchvision
    torch.manual_seed(0)
    tv = torchvision.models.vgg16(weights=None).eval()
    path = tmp_path / 'vgg16.pth'
    torch.save(tv.state_dict(), path)
    init_cfg = dict(type='Pretrained', checkpoint=str(path))
    pad = _build(dict(type='PADBackbone', base_type='VGG', depth=16,
                      init_cfg=init_cfg,
                      pad_cfg=dict(layers=['conv5_*'])))
    pad.init_weights()
    pad.eval()
    assert torch.equal(pad.conv1_1.weight, tv.features[0].weight)
    assert torch.equal(pad.conv5_3.bias, tv.features[28].bias)
    assert torch.equal(pad.conv5_1.weight, tv.features[24].weight)
    # priors keep their initialisation (zero weights, favour dilation 1)
    assert torch.count_nonzero(pad.conv5_1.prior.input_weight) == 0
    assert initial_logits(pad.conv5_1.prior) == [1.0, -1.0, -1.0]
    # fc6 as a 7x7 conv == the Linear on a flattened 7x7 pool5 window
    p5 = torch.randn(1, 512, 7, 7)
    with torch.no_grad():
        conv = pad.fc6(p5)[0, :, 3, 3]
        lin = tv.classifier[0](p5.flatten(1))[0]
        assert torch.allclose(conv, lin, atol=1e-4, rtol=1e-4)
        h = torch.randn(1, 4096, 1, 1)
        assert torch.allclose(pad.fc7(h).flatten(),
                              tv.classifier[3](h.flatten(1)).flatten(),
                              atol=1e-4, rtol=1e-4)
        # same features as torchvision's VGG-16 (hard eval: dilation 1)
        x = torch.randn(1, 3, 64, 64)
        assert torch.allclose(_pool5(pad, x), tv.features(x), atol=1e-4,
                              rtol=1e-4)


def _pool5(vgg, x):
    vgg.out_indices = (4, )
    try:
        return vgg(x)[0]
    finally:
        vgg.out_indices = (2, 3, 5)


def test_xception_loads_timm_format_checkpoint(tmp_path):
    """timm's xception65 keys (stem.0.conv.weight, blocks.<i>.stack.conv<j>.
    conv_dw.weight, ..., head.fc.*) load as they are; head.* is dropped."""
    ref = _build(dict(type='Xception65'))
    torch.manual_seed(0)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v
             for k, v in ref.state_dict().items()}
    for key in ('stem.0.conv.weight', 'stem.1.bn.running_var',
                'blocks.0.shortcut.conv.weight',
                'blocks.3.stack.conv1.conv_dw.weight',
                'blocks.20.stack.conv3.bn_pw.running_var'):
        assert key in state
    state['head.fc.weight'] = torch.randn(1000, 2048)
    state['head.fc.bias'] = torch.randn(1000)
    path = tmp_path / 'xception65.pth'
    torch.save(state, path)
    model = _build(dict(
        type='PADBackbone', base_type='Xception65',
        init_cfg=dict(type='Pretrained', checkpoint=str(path)),
        pad_cfg=dict(layers=['blocks.20.stack.conv?.conv_dw'])))
    model.init_weights()
    got = model.state_dict()
    for k, v in state.items():
        if k.startswith('head.'):
            assert k not in got
        else:
            assert torch.equal(got[k], v), k
    assert torch.count_nonzero(
        model.blocks[20].stack.conv1.conv_dw.prior.input_weight) == 0


@pytest.mark.parametrize('backbone,expected', [
    (dict(type='VGG', depth=16), 'pretrain/vgg16-397923af.pth'),
    (dict(type='Xception65'), 'pretrain/xception65.pth'),
])
def test_missing_checkpoint_error_names_the_file(backbone, expected):
    model = _build(dict(backbone, init_cfg=dict(type='Pretrained',
                                                checkpoint=expected)),
                   meta=True)
    with pytest.raises(FileNotFoundError) as err:
        model.init_weights()
    msg = str(err.value)
    assert repr(expected) in msg and 'Expected' in msg  # file + format
    assert 'init_cfg=None' in msg  # how to train without it
    assert 'README.md' in msg  # where the file comes from


def test_checked_pretrained_initializer_loads_like_mmengine(tmp_path):
    """The 'CheckedPretrained' initializer loads like 'Pretrained' (prefix),
    e.g. an mmpretrain-style checkpoint into mmseg's ResNetV1c."""
    src = _build(dict(type='ResNetV1c', depth=18))
    torch.manual_seed(1)
    state = {'backbone.' + k: torch.randn_like(v)
             if v.is_floating_point() else v
             for k, v in src.state_dict().items()}
    path = tmp_path / 'r18.pth'
    torch.save({'state_dict': state}, path)
    model = _build(dict(type='ResNetV1c', depth=18, init_cfg=dict(
        type='CheckedPretrained', checkpoint=str(path), prefix='backbone.')))
    model.init_weights()
    assert torch.equal(model.stem[0].weight, state['backbone.stem.0.weight'])
    assert torch.equal(model.layer4[1].conv2.weight,
                       state['backbone.layer4.1.conv2.weight'])


def test_bad_backbone_arguments():
    with pytest.raises(ValueError, match='depth'):
        _build(dict(type='VGG', depth=17), meta=True)
    with pytest.raises(ValueError, match='out_indices'):
        _build(dict(type='VGG', out_indices=(6, )), meta=True)
    with pytest.raises(ValueError, match='output_stride'):
        _build(dict(type='Xception65', output_stride=4), meta=True)


def test_pad_vgg_inplace_relu_backward():
    """VGG (like torchvision's and Caffe's) applies an in-place ReLU right
    on the conv output; a PAD conv there must allow it in training."""
    vgg = _build(dict(type='PADBackbone', base_type='VGG', depth=11,
                      with_fc=False, out_indices=(4, ),
                      pad_cfg=dict(layers=['conv5_*'])))
    vgg.init_weights()
    vgg.train()
    x = torch.randn(1, 3, 32, 32)
    vgg(x)[0].sum().backward()
    assert vgg.conv5_1.weight.grad is not None
    assert vgg.conv5_1.prior.input_weight.grad is not None
