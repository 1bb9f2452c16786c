"""Segmentation model zoo (issue 3): configs/pad_fcn, configs/pad_deeplabv3plus
and the design-card entry point configs/pad_deeplabv3plus_r101_cityscapes.py.

* every config loads, builds (on the meta device: no memory), converts
  exactly the layers the paper names, and PAD adds only prior parameters;
* every config builds for real, a forward on a small input has the right
  shape and output stride, and it trains 2 iterations + validates once on a
  tiny generated data set in the real VOC / Cityscapes layout (mmseg's
  PascalVOCDataset / CityscapesDataset and IoUMetric);
* the new backbones (VGG-16, Xception-65) have the published parameter
  counts and load the usual ImageNet checkpoint formats; a missing
  checkpoint file is a clear error before training starts;
* FCN head geometry (bilinear transposed convs, crops, at-once scaling).
"""
from __future__ import annotations

import copy
import functools
import glob
import os.path as osp
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import pad_mm  # noqa: F401
from pad_mm.models import PADConv2d

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from seg_data import make_cityscapes, make_voc, shrink_seg_cfg  # noqa: E402

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
ENTRY = 'configs/pad_deeplabv3plus_r101_cityscapes.py'

# ---------------------------------------------------------------------------
# What the paper says, per config: PAD layers (backbone module names),
# options and aggregation; vanilla counterpart; data set; head family.
VGG_CONV = {b: [f'conv{b}_{i}' for i in (1, 2, 3)] for b in (3, 4, 5)}
R101_L4 = [f'layer4.{i}.conv2' for i in range(3)]
# Xception-65: stride-1 depthwise convs of middle (3-18) + exit (19-20) flow
XC_MID_EXIT = [f'blocks.{b}.stack.conv{j}.conv_dw' for b in range(3, 21)
               for j in (1, 2, 3)]
# MobileNetV2: depthwise convs of the 160-ch (layer6) and 320-ch (layer7)
MV2_160_320 = [f'layer6.{i}.conv.1.conv' for i in range(3)] + \
    ['layer7.0.conv.1.conv']
DRN_L78 = ['layer7.0', 'layer8.0']

FCN8 = 'configs/pad_fcn/fcn8s_vgg16_1xb1-300k_voc12aug.py'
FCN32 = 'configs/pad_fcn/fcn32s_vgg16_1xb1-100k_voc12aug.py'
D = 'configs/pad_deeplabv3plus/'
R101_VOC = D + 'deeplabv3plus_r101-d16_4xb2-40k_voc12aug-512x512.py'
XC_VOC = D + 'deeplabv3plus_xception65-d16_4xb2-40k_voc12aug-512x512.py'
DRN_VOC = D + 'deeplabv3plus_drn-d-54-d16_4xb2-40k_voc12aug-512x512.py'
R101_CS = D + 'deeplabv3plus_r101-d16_4xb2-80k_cityscapes-512x1024.py'
XC_CS = D + 'deeplabv3plus_xception65-d16_4xb2-80k_cityscapes-512x1024.py'
MV2_CS = D + 'deeplabv3plus_mobilenet-v2-d16_4xb2-80k_cityscapes-512x1024.py'


def _pad(vanilla, layers, aggregation='markov', dilations=(1, 2, 4)):
    return dict(vanilla=vanilla, layers=layers, aggregation=aggregation,
                dilations=dilations)


def _fcn(name):
    return f'configs/pad_fcn/{name}_fcn8s_vgg16_1xb1-300k_voc12aug.py'


ZOO = {
    # Table 4 / 1-3 (VGG-16 FCN, VOC)
    FCN8: None,
    FCN32: None,
    'configs/pad_fcn/pad_fcn8s_vgg16_1xb1-300k_voc12aug.py':
    _pad(FCN8, VGG_CONV[5]),
    'configs/pad_fcn/pad_fcn32s_vgg16_1xb1-100k_voc12aug.py':
    _pad(FCN32, VGG_CONV[5]),
    _fcn('pad-conv3'): _pad(FCN8, VGG_CONV[3]),
    _fcn('pad-conv4'): _pad(FCN8, VGG_CONV[4]),
    _fcn('pad-conv34'): _pad(FCN8, VGG_CONV[3] + VGG_CONV[4]),
    _fcn('pad-conv45'): _pad(FCN8, VGG_CONV[4] + VGG_CONV[5]),
    _fcn('pad-conv345'): _pad(FCN8, VGG_CONV[3] + VGG_CONV[4] + VGG_CONV[5]),
    _fcn('pad-gated'): _pad(FCN8, VGG_CONV[5], 'gated'),
    _fcn('pad-recurrent'): _pad(FCN8, VGG_CONV[5], 'recurrent'),
    _fcn('pad-d12'): _pad(FCN8, VGG_CONV[5], dilations=(1, 2)),
    # Table 4 / 2 (DeepLabV3+, VOC)
    R101_VOC: None,
    D + 'pad_deeplabv3plus_r101-d16_4xb2-40k_voc12aug-512x512.py':
    _pad(R101_VOC, R101_L4),
    D + 'pad-gated_deeplabv3plus_r101-d16_4xb2-40k_voc12aug-512x512.py':
    _pad(R101_VOC, R101_L4, 'gated'),
    D + 'pad-recurrent_deeplabv3plus_r101-d16_4xb2-40k_voc12aug-512x512.py':
    _pad(R101_VOC, R101_L4, 'recurrent'),
    XC_VOC: None,
    D + 'pad_deeplabv3plus_xception65-d16_4xb2-40k_voc12aug-512x512.py':
    _pad(XC_VOC, XC_MID_EXIT),
    DRN_VOC: None,
    D + 'pad_deeplabv3plus_drn-d-54-d16_4xb2-40k_voc12aug-512x512.py':
    _pad(DRN_VOC, DRN_L78),
    # Table 5 (Cityscapes)
    R101_CS: None,
    D + 'pad_deeplabv3plus_r101-d16_4xb2-80k_cityscapes-512x1024.py':
    _pad(R101_CS, R101_L4),
    XC_CS: None,
    D + 'pad_deeplabv3plus_xception65-d16_4xb2-80k_cityscapes-512x1024.py':
    _pad(XC_CS, XC_MID_EXIT),
    MV2_CS: None,
    D + 'pad_deeplabv3plus_mobilenet-v2-d16_4xb2-80k_cityscapes-512x1024.py':
    _pad(MV2_CS, MV2_160_320),
    ENTRY: _pad(R101_CS, R101_L4),
}
CONFIGS = sorted(ZOO)


@functools.lru_cache(maxsize=None)
def _cfg_cached(rel: str) -> Config:
    return Config.fromfile(osp.join(ROOT, rel))


def _cfg(rel: str) -> Config:
    """A fresh copy of the config (parsing one takes ~0.5 s)."""
    return copy.deepcopy(_cfg_cached(rel))


def _meta_model(cfg: Config):
    init_default_scope('mmseg')
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def _prior_numel(layer: PADConv2d) -> int:
    """Eqs. 3-5: U_h (D x C_in) + bias D; recurrent adds W_h (D x D) + bias;
    gated adds W_h + bias, U_a (D x C_in) + bias, W_a (D x D)."""
    d, c = len(layer.dilations), layer.in_channels
    n = d * c + d
    if layer.aggregation in ('recurrent', 'gated'):
        n += d * d + d
    if layer.aggregation == 'gated':
        n += d * c + d + d * d
    return n


def test_zoo_is_complete():
    found = sorted(
        osp.relpath(p, ROOT) for p in
        glob.glob(osp.join(ROOT, 'configs/pad_fcn/*.py')) +
        glob.glob(osp.join(ROOT, 'configs/pad_deeplabv3plus/*.py')) +
        [osp.join(ROOT, ENTRY)])
    assert found == CONFIGS
    for rel in CONFIGS:
        cfg = _cfg(rel)
        assert cfg.custom_imports == dict(imports=['pad_mm'],
                                          allow_failed_imports=False), rel
        assert cfg.default_scope == 'mmseg'
        spec = ZOO[rel]
        if spec is not None:  # every PAD row has its vanilla row
            assert spec['vanilla'] in ZOO and ZOO[spec['vanilla']] is None
    # every vanilla row has a PAD row
    vanilla_with_pad = {s['vanilla'] for s in ZOO.values() if s}
    assert vanilla_with_pad == {r for r, s in ZOO.items() if s is None}


def test_entry_point_is_table5_r101_pad():
    entry = _cfg(ENTRY)
    table5 = _cfg(D + 'pad_deeplabv3plus_r101-d16_4xb2-80k_'
                  'cityscapes-512x1024.py')
    assert entry.model.to_dict() == table5.model.to_dict()
    assert entry.train_dataloader.to_dict() == \
        table5.train_dataloader.to_dict()
    assert entry.train_dataloader.dataset.type == 'CityscapesDataset'
    assert entry.train_dataloader.batch_size * 4 == 8


@pytest.mark.parametrize('rel', CONFIGS)
def test_config_builds_with_paper_pad_layers(rel):
    cfg = _cfg(rel)
    spec = ZOO[rel]
    model = _meta_model(cfg)
    pads = {n[len('backbone.'):]: m for n, m in model.named_modules()
            if isinstance(m, PADConv2d)}
    # training protocol of appendix A: batch 8 (DeepLabV3+), batch 1 (FCN)
    is_fcn = 'pad_fcn' in rel
    named = ZOO[ENTRY]['vanilla'] if rel == ENTRY else rel
    gpus_x_batch = osp.basename(named).split('_')[-2].split('-')[0]
    gpus, batch = (int(v) for v in gpus_x_batch.split('xb'))
    assert cfg.train_dataloader.batch_size == batch
    if is_fcn:
        assert gpus * batch == 1
        assert cfg.optim_wrapper.optimizer.type == 'Adam'
        assert [t['type'] for t in
                cfg.train_dataloader.dataset.datasets[0].pipeline] == [
                    'LoadImageFromFile', 'LoadAnnotations', 'PackSegInputs']
    else:
        assert gpus * batch == 8
        assert cfg.model.decode_head.dilations == (1, 6, 12, 18)  # os 16
        assert cfg.model.auxiliary_head is None
    if spec is None:
        assert pads == {}
        assert cfg.get('custom_hooks', []) == [] or all(
            h['type'] != 'PADTauHook' for h in cfg.custom_hooks)
        return
    assert sorted(pads) == sorted(spec['layers'])
    for name, layer in pads.items():
        assert layer.adaptive, name
        assert layer.dilations == spec['dilations'], name
        assert layer.aggregation == spec['aggregation'], name
        assert layer.stride == (1, 1), name  # the paper converts stride 1
        assert layer.abs_dilations == tuple(
            d * layer.dilation[0] for d in spec['dilations'])
        if 'conv_dw' in name or '.conv.1.conv' in name:  # depthwise
            assert layer.groups == layer.in_channels == layer.out_channels
    assert [h['type'] for h in cfg.custom_hooks] == ['PADTauHook']
    # PAD adds only the prior parameters, everything else is the vanilla
    # model's (names and shapes)
    vanilla = _meta_model(_cfg(spec['vanilla']))
    v_shapes = {k: v.shape for k, v in vanilla.named_parameters()}
    p_shapes = {k: v.shape for k, v in model.named_parameters()}
    non_prior = {k: s for k, s in p_shapes.items() if '.prior.' not in k}
    assert non_prior == v_shapes
    prior_keys = {k for k in p_shapes if '.prior.' in k}
    assert {k.split('.prior.')[0] for k in prior_keys} == {
        'backbone.' + n for n in spec['layers']}
    added = sum(p.numel() for k, p in model.named_parameters()
                if '.prior.' in k)
    assert added == sum(_prior_numel(m) for m in pads.values())
    total_v = sum(p.numel() for p in vanilla.parameters())
    total_p = sum(p.numel() for p in model.parameters())
    assert total_p - total_v == added


# ---------------------------------------------------------------------------
# real build, forward shape, 2 training iterations + validation
@pytest.fixture(scope='module')
def seg_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('segdata')
    return dict(
        voc=make_voc(str(root / 'VOCdevkit' / 'VOC2012')),
        cityscapes=make_cityscapes(str(root / 'cityscapes')))


def _num_classes(cfg):
    return cfg.model.decode_head.num_classes


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    """Tiny inputs: one intra-op thread is faster (and much faster on a
    busy 2-core machine, where idle OpenMP workers stall depthwise convs)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def fast_config_text(monkeypatch):
    """The Runner pretty-prints the config with yapf when it logs and
    dumps it (seconds per config); the text is not under test here."""
    import mmengine.config.config as mm_config
    monkeypatch.setattr(mm_config, 'FormatCode',
                        lambda text, **kwargs: (text, True))


@pytest.mark.parametrize('rel', CONFIGS)
def test_config_forward_train_val(rel, seg_data, tmp_path, fast_config_text):
    from pad_mm.runtime.runner_utils import build_runner
    cfg = _cfg(rel)
    is_voc = cfg.train_dataloader.dataset.get('type') == 'ConcatDataset'
    data_root = seg_data['voc' if is_voc else 'cityscapes']
    shrink_seg_cfg(cfg, data_root, str(tmp_path / 'work'), crop=(32, 32))
    runner = build_runner(cfg)
    model = runner.model
    num_classes = _num_classes(cfg)
    assert num_classes == (21 if is_voc else 19)

    # forward on a small input: shape and output stride
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.extract_feat(x)
        out = model(x, mode='tensor')
    if 'pad_fcn' in rel:
        assert out.shape == (2, num_classes, 64, 64)
        assert feats[-1].shape[1:] == (4096, 2, 2)  # fc7, stride 32
    else:
        assert out.shape == (2, num_classes, 16, 16)  # decoder at 1/4
        in_index = cfg.model.decode_head.in_index
        assert feats[in_index].shape[-2:] == (4, 4)  # output stride 16
        assert feats[0].shape[-2:] == (16, 16)  # low-level feature, 1/4
    model.train()

    runner.train()
    assert runner.iter == 2
    scalars = runner.message_hub.log_scalars
    assert torch.isfinite(torch.tensor(
        scalars['train/loss'].current())).item()
    miou = scalars['val/mIoU'].current()
    assert 0.0 <= miou <= 100.0
    # the evaluator and the data set classes are mmseg's own
    assert cfg.val_evaluator.type == 'IoUMetric'
    ds = runner.val_dataloader.dataset
    assert type(ds).__name__ == ('PascalVOCDataset'
                                 if is_voc else 'CityscapesDataset')
    assert len(ds) == 2


# ---------------------------------------------------------------------------
# the new backbones: published parameter counts, checkpoint formats, errors
def _build(cfg: dict, meta: bool = False):
    init_default_scope('mmseg')
    if meta:
        with torch.device('meta'):
            return MODELS.build(cfg)
    return MODELS.build(cfg)


def _numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


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
    per_layer = {'markov': d * c + d,
                 'recurrent': d * c + d + d * d + d,
                 'gated': 2 * (d * c + d) + 2 * d * d + d}[agg]
    assert _numel(vgg) - (138_357_544 - 4_097_000) == 3 * per_layer
    xc = _build(dict(type='PADBackbone', base_type='Xception65',
                     pad_cfg=dict(layers=['blocks.20.stack.conv?.conv_dw'],
                                  aggregation=agg)), meta=True)
    ins = (1024, 1536, 1536)  # inputs of block 20's depthwise convs
    per = {'markov': lambda c: d * c + d,
           'recurrent': lambda c: d * c + 2 * d + d * d,
           'gated': lambda c: 2 * (d * c + d) + 2 * d * d + d}[agg]
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
    assert pad.conv5_1.prior.input_bias.tolist() == [2.0, 0.0, 0.0]
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


def test_missing_checkpoint_stops_before_first_iteration(seg_data, tmp_path,
                                                         fast_config_text):
    """A stock backbone (mmseg's MobileNetV2, loaded by pad_mm's
    'CheckedPretrained' initializer) with its documented local
    ImageNet file absent: a clear error naming the file, nothing trained."""
    from pad_mm.runtime.runner_utils import build_runner
    cfg = _cfg(D + 'pad_deeplabv3plus_mobilenet-v2-d16_4xb2-80k_'
               'cityscapes-512x1024.py')
    expected = cfg.model.backbone.init_cfg.checkpoint
    assert expected == 'pretrain/mobilenet_v2.pth'
    shrink_seg_cfg(cfg, seg_data['cityscapes'], str(tmp_path / 'w'))
    cfg.model.backbone.init_cfg = dict(type='CheckedPretrained',
                                       checkpoint=expected,
                                       prefix='backbone.')
    runner = build_runner(cfg)
    with pytest.raises(FileNotFoundError) as err:
        runner.train()
    assert runner.iter == 0
    msg = str(err.value)
    assert 'MobileNetV2' in msg and repr(expected) in msg
    assert 'README.md' in msg and 'init_cfg=None' in msg


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


def test_bad_backbone_and_head_arguments():
    with pytest.raises(ValueError, match='depth'):
        _build(dict(type='VGG', depth=17), meta=True)
    with pytest.raises(ValueError, match='out_indices'):
        _build(dict(type='VGG', out_indices=(6, )), meta=True)
    with pytest.raises(ValueError, match='output_stride'):
        _build(dict(type='Xception65', output_stride=4), meta=True)
    with pytest.raises(ValueError, match='in_channels'):
        _build(dict(type='FCN8sHead', in_channels=(512, 4096),
                    in_index=(0, 1), num_classes=3))
    with pytest.raises(ValueError, match='skip_scales'):
        _build(dict(type='FCN8sHead', in_channels=(8, 16, 32),
                    in_index=(0, 1, 2), skip_scales=(0.1, ),
                    num_classes=3))


# ---------------------------------------------------------------------------
# FCN heads
def _fcn8s(**kw):
    head = _build(dict(type='FCN8sHead', in_channels=(8, 16, 32),
                       in_index=(0, 1, 2), num_classes=3, **kw))
    head.init_weights()
    return head


def test_fcn_upsampling_is_bilinear_learned_2x_fixed_final():
    head = _fcn8s(skip_scales=(1e-4, 1e-2))
    assert head.upscore2.weight.requires_grad
    assert head.upscore_pool4.weight.requires_grad
    assert not head.upscore8.weight.requires_grad  # fixed (Long et al.)
    z = torch.randn(1, 3, 5, 6)
    for up, f in ((head.upscore2, 2), (head.upscore8, 8)):
        with torch.no_grad():
            got = up(z)
        ref = F.interpolate(z, scale_factor=f, mode='bilinear',
                            align_corners=False)
        assert got.shape == ref.shape
        # equal away from the border (zero padding vs edge clamping)
        assert torch.allclose(got[..., f:-f, f:-f], ref[..., f:-f, f:-f],
                              atol=1e-5)
    head32 = _build(dict(type='FCN32sHead', in_channels=(32, ),
                         in_index=(0, ), num_classes=3,
                         learn_final_upsample=True))
    assert head32.upscore.weight.requires_grad
    assert head32.upscore.kernel_size == (64, 64)


def test_fcn8s_forward_skips_scales_and_crops():
    head = _fcn8s(skip_scales=(1e-4, 1e-2))
    # input 45 x 61: pool3 6 x 8, pool4 3 x 4, fc7 2 x 2 (ceil mode)
    pool3, pool4, fc7 = (torch.randn(1, 8, 6, 8), torch.randn(1, 16, 3, 4),
                         torch.randn(1, 32, 2, 2))
    with torch.no_grad():
        out = head([pool3, pool4, fc7])
        assert out.shape == (1, 3, 48, 64)
        assert torch.count_nonzero(out) == 0  # score layers start at zero
        for layer in (head.conv_seg, head.score_pool4, head.score_pool3):
            layer.weight.normal_()
            layer.bias.normal_()
        out = head([pool3, pool4, fc7])
        # the reference computation, FCN-8s at once
        s = head.upscore2(head.conv_seg(fc7))[..., :3, :4] + \
            head.score_pool4(pool4 * 1e-2)
        s = head.upscore_pool4(s)[..., :6, :8] + \
            head.score_pool3(pool3 * 1e-4)
        assert torch.allclose(out, head.upscore8(s))
        # predictions are cropped (offset 0) to the padded input size
        pred = head.predict_by_feat(out, [dict(img_shape=(45, 61),
                                               pad_shape=(45, 61))])
        assert torch.equal(pred, out[..., :45, :61])


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
