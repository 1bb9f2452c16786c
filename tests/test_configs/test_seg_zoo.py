"""Segmentation model zoo: configs/pad_fcn, configs/pad_deeplabv3plus
and the design-card entry point configs/pad_deeplabv3plus_r101_cityscapes.py.

* every config loads, builds (on the meta device: no memory), converts
  exactly the layers the paper names, and PAD adds only prior parameters;
* every config builds for real, a forward on a small input has the right
  shape and output stride, and it trains 2 iterations + validates once on a
  tiny generated data set in the real VOC / Cityscapes layout (mmseg's
  PascalVOCDataset / CityscapesDataset and IoUMetric);
* a missing checkpoint file is a clear error before training starts.
"""
from __future__ import annotations

import functools
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.models import PADConv2d

from helpers.configs import load_config
from helpers.seg_data import make_cityscapes, make_voc, shrink_seg_cfg

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
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


def _cfg(rel: str) -> Config:
    """A fresh copy of the config (parsed once per session)."""
    return load_config(osp.join(ROOT, rel))


def _meta_model(cfg: Config):
    init_default_scope('mmseg')
    with torch.device('meta'):
        return MODELS.build(cfg.model)


@functools.lru_cache(maxsize=None)
def _meta_model_of(rel: str):
    """The model of the config ``rel`` on the meta device, built once per
    session (the PAD rows compare with their vanilla row's)."""
    return _meta_model(_cfg(rel))


def _prior_numel(layer: PADConv2d) -> int:
    """Eqs. 3-5: U_h (D x C_in) + bias D; recurrent adds W_h (D x D) + bias;
    gated adds W_h + bias, U_a (D x C_in) + bias, W_a (D x D); the default
    f (ScaledTanh) adds its rho."""
    d, c = len(layer.dilations), layer.in_channels
    n = d * c + d
    if layer.act_cfg == dict(type='ScaledTanh'):
        n += 1
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
    model = _meta_model_of(rel)
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
    vanilla = _meta_model_of(spec['vanilla'])
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
    from pad_mm.apis.runner import build_runner
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


def test_missing_checkpoint_stops_before_first_iteration(seg_data, tmp_path,
                                                         fast_config_text):
    """A stock backbone (mmseg's MobileNetV2, loaded by pad_mm's
    'CheckedPretrained' initializer) with its documented local
    ImageNet file absent: a clear error naming the file, nothing trained."""
    from pad_mm.apis.runner import build_runner
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
