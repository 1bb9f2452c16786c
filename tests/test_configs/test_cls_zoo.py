"""Classification model zoo: configs/pad_imagenet and
configs/pad_finegrained.

Every config is run for 2 training iterations and one validation pass with
mmpretrain's own dataset classes (ImageNet, StanfordCars, FGVCAircraft) on
tiny data sets generated here in their real on-disk layouts, and
mmpretrain's ``Accuracy`` metric. Each ImageNet run saves its weights as
the "ImageNet checkpoint" from which the fine-grained runs start, so the
checkpoint paths documented in the fine-grained configs are exercised.
Parameter counts are compared with the published ones and the converted
layer sets with the paper's appendix (Tables 9 and 10).
"""
import csv
import glob
import json
import math
import os
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook

import pad_mm.cls  # noqa: F401  (registers pad_mm for mmpretrain)
import pad_mm.seg  # noqa: F401  (and for mmseg)
from pad_mm.engine.hooks.tau_hook import tau_at
from pad_mm.apis.runner import build_runner
from pad_mm.models import PADConv2d

from helpers.configs import load_config
from helpers.tools import load_tool
from helpers.cls_data import make_aircraft, make_imagenet, make_stanford_cars

IMAGENET = [
    'vgg16_8xb16-120e_in1k', 'resnet50_8xb24-120e_in1k',
    'drn-c-26_8xb24-120e_in1k', 'mobilenet-v2_8xb32-300e_in1k'
]
FG_BACKBONES = {  # fine-grained backbone -> its regular ImageNet config
    'resnet50': 'resnet50_8xb24-120e_in1k',
    'drn-c-26': 'drn-c-26_8xb24-120e_in1k',
    'mobilenet-v2': 'mobilenet-v2_8xb32-300e_in1k',
}
FG_DATASETS = {'stanfordcars': 196, 'aircraft': 100}
FINEGRAINED = [
    f'{b}_8xb32-120e_{d}-{c}px' for b in FG_BACKBONES for d in FG_DATASETS
    for c in (224, 448)
]

# Paper appendix A, Table 9 (ImageNet) / Table 10 (fine-grained), in the
# module names of mmpretrain's backbones and pad_mm's DRN.
PAD_LAYERS = {
    # "Only Conv-5 is incorporated with PAD units" (conv5_1..conv5_3)
    'vgg16': ['features.14.conv', 'features.15.conv', 'features.16.conv'],
    # "The last three convolution layers in Layer-2 block": the 3x3 convs
    # of the last three bottlenecks of layer2
    'resnet50': ['layer2.1.conv2', 'layer2.2.conv2', 'layer2.3.conv2'],
    # ImageNet: "Layer-8 is modified"
    'drn-c-26': ['layer8.0.conv1', 'layer8.0.conv2'],
    # "The Layer-2 with t=6, c=32, n=3, s=2": its depthwise 3x3 convs
    'mobilenet-v2': [
        'layer3.0.conv.1.conv', 'layer3.1.conv.1.conv', 'layer3.2.conv.1.conv'
    ],
}
# Fine-grained DRN-C-26: "Layer-7 and Layer-8 are modified"
PAD_LAYERS_FG = dict(
    PAD_LAYERS,
    **{'drn-c-26': ['layer7.0.conv1', 'layer7.0.conv2', 'layer8.0.conv1',
                    'layer8.0.conv2']})
# Published sizes with the 1000-class head (PAD-Nets Table 6; torchvision /
# mmpretrain model cards: VGG-16 138.36M, ResNet-50 25.56M, MobileNetV2
# 3.50M; DRN README: DRN-C-26 21.1M).
PUBLISHED_P = {'vgg16': 138e6, 'resnet50': 25.5e6, 'drn-c-26': 21.1e6,
               'mobilenet-v2': 3.5e6}
# Parameters a Markov PAD layer adds: U_h (D x C_in 1x1 kernel) + D biases
# + rho of the default f (ScaledTanh), D = 3 options, C_in = the conv's
# input channels:
# VGG conv5: 3 x 512; ResNet-50 layer2 3x3: 3 x 128; DRN-C-26 layer8:
# 2 x 512; MobileNetV2 stage (6, 32, 3, 2) depthwise: 144, 192, 192.
EXPECTED_DP = {
    'vgg16': 3 * (3 * 512 + 3 + 1),
    'resnet50': 3 * (3 * 128 + 3 + 1),
    'drn-c-26': 2 * (3 * 512 + 3 + 1),
    'mobilenet-v2': (3 * 144 + 3 + 1) + 2 * (3 * 192 + 3 + 1),
}
# Appendix batch sizes (8 GPUs x per-GPU batch) and epochs
IMAGENET_RECIPE = {'vgg16': (128, 120), 'resnet50': (192, 120),
                   'drn-c-26': (192, 120), 'mobilenet-v2': (256, 300)}


def _backbone_key(name):
    """'pad_drn-c-26_8xb24-120e_in1k' -> 'drn-c-26'."""
    return (name[4:] if name.startswith('pad_') else name).split('_')[0]


load_cfg = load_config


def _cfg_path(repo_root, name):
    folder = 'pad_imagenet' if name.split('_')[-1] == 'in1k' else \
        'pad_finegrained'
    return osp.join(repo_root, 'configs', folder, name + '.py')


# --------------------------------------------------------------------------
# shrinking a config to 2 iterations on the tiny data
# --------------------------------------------------------------------------
SIZE_KEYS = {'RandomResizedCrop': 'scale', 'ResizeEdge': 'scale',
             'CenterCrop': 'crop_size', 'RandomCrop': 'crop_size',
             'Resize': 'scale'}


def _shrink_pipeline(pipeline, crop):
    changed = 0
    for t in pipeline:
        if t['type'] in SIZE_KEYS:
            t[SIZE_KEYS[t['type']]] = crop
            changed += 1
    assert changed, f'no resize/crop transform found in {pipeline}'


def tiny_cfg(path, work_dir, data_root, crop=64):
    """The config at ``path`` shrunk to batch 2, ``crop`` px and one epoch
    of the 4 generated training images. (Below 64 px the stride-32 nets end
    in 1x1 maps, where BN over 2 samples is degenerate and the gradients
    explode.)"""
    cfg = load_cfg(path)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg[loader]
        dl.batch_size = 2
        dl.num_workers = 0
        dl.persistent_workers = False
        dl.dataset.data_root = str(data_root)
        _shrink_pipeline(dl.dataset.pipeline, crop)
    cfg.train_cfg.max_epochs = 1     # 4 images / batch 2 = 2 iterations
    # linear lr scaling from the recipe's batch size to the test's 2
    cfg.auto_scale_lr.enable = True
    cfg.train_cfg.val_interval = 1
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    cfg.randomness = dict(seed=0)
    return cfg


class _Snapshot(Hook):
    """Copies the model's tensors when training starts (after the weights
    were initialised / loaded) and the training losses."""
    priority = 'LOWEST'

    def __init__(self, keep_all):
        self.keep_all = keep_all
        self.state = {}
        self.losses = []

    def before_train(self, runner):
        for k, v in runner.model.state_dict().items():
            if self.keep_all or '.prior.' in k:
                self.state[k] = v.detach().clone()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append(float(outputs['loss'].detach()))


def _own_accuracy(runner):
    """Top-1 accuracy (%) of the trained model on the val set, computed
    here from the model's predictions (not by the metric)."""
    model = runner.model
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for batch in runner.val_dataloader:
            for s in model.val_step(batch):
                hits += int(s.pred_label.item() == s.gt_label.item())
                total += 1
    return 100.0 * hits / total, total


def run_trip(path, work_dir, data_root, crop, keep_all=False):
    cfg = tiny_cfg(path, work_dir, data_root, crop)
    runner = build_runner(cfg)
    snap = _Snapshot(keep_all)
    runner.register_hook(snap)
    runner.train()
    scalars = runner.message_hub.log_scalars
    top1 = scalars['val/accuracy/top1'].current()
    own, n = _own_accuracy(runner)
    return runner, snap, top1, own, n


def _check_trip(name, runner, snap, top1, own, n, val_labels, pad_expected,
                dilations):
    assert runner.iter == 2, name
    assert runner.epoch == 1
    assert len(snap.losses) == 2 and all(math.isfinite(x)
                                         for x in snap.losses)
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
    # the dataset class read the generated val split (layout + labels) and
    # mmpretrain's Accuracy over it agrees with the model's predictions
    assert [int(y) for y in runner.val_dataloader.dataset.get_gt_labels()
            ] == list(val_labels)
    assert n == len(val_labels)
    assert top1 == pytest.approx(own), name
    model = runner.model
    pads = {n_: m for n_, m in model.backbone.named_modules()
            if isinstance(m, PADConv2d) and m.adaptive}
    assert sorted(pads) == sorted(pad_expected), name
    for m in pads.values():
        assert m.dilations == dilations and m.aggregation == 'markov'
    if pads:
        # tau annealed by PADTauHook: value of iteration index 1 of 2
        tau = tau_at(1, 'exp', 1.0, 0.1, 2)
        assert all(m.tau == pytest.approx(tau) for m in pads.values())
        assert runner.message_hub.get_scalar(
            'train/tau').current() == pytest.approx(tau)
        # the priors were trained (gradients reached them)
        changed = [k for k, v in snap.state.items() if '.prior.' in k and
                   not torch.equal(v, model.state_dict()[k])]
        assert any('input_weight' in k for k in changed), name
    else:
        assert not any(isinstance(m, PADConv2d)
                       for m in model.modules()), name


# --------------------------------------------------------------------------
# ImageNet: each config's run is done once and shared with the fine-grained
# tests through its saved weights
# --------------------------------------------------------------------------
class _ImageNetRuns:

    def __init__(self, repo_root, base):
        self.repo_root = repo_root
        self.base = base
        self.data = osp.join(base, 'imagenet')
        self.val_labels = make_imagenet(self.data)
        self.ckpt_dir = osp.join(base, 'checkpoints', 'imagenet')
        os.makedirs(self.ckpt_dir, exist_ok=True)
        self.results = {}

    def get(self, name):
        """Run ``name`` once (2 iterations + validation), check the run and
        save its weights as the ImageNet checkpoint; returns the parameter
        statistics of the trained model and the checkpoint path."""
        if name not in self.results:
            # VGG-16's classifier needs 224 x 224 inputs (7 x 7 x 512)
            crop = 224 if _backbone_key(name) == 'vgg16' else 64
            runner, snap, top1, own, n = run_trip(
                _cfg_path(self.repo_root, name),
                osp.join(self.base, 'work', name), self.data, crop)
            pad = name.startswith('pad_')
            _check_trip(name, runner, snap, top1, own, n, self.val_labels,
                        PAD_LAYERS[_backbone_key(name)] if pad else [],
                        (1, 2, 4))
            stats = _tool().count_pad_params(runner.model)
            ckpt = None
            if _backbone_key(name) in FG_BACKBONES:  # not VGG-16 (Table 7)
                ckpt = osp.join(self.ckpt_dir, name + '.pth')
                torch.save({'state_dict': runner.model.state_dict()}, ckpt)
            self.results[name] = dict(stats=stats, ckpt=ckpt)
            del runner, snap
        return self.results[name]


@pytest.fixture(scope='module')
def imagenet_runs(repo_root, tmp_path_factory):
    return _ImageNetRuns(repo_root, str(tmp_path_factory.mktemp('cls_zoo')))


_TOOL = None


def _tool():
    global _TOOL
    if _TOOL is None:
        here = osp.dirname(osp.abspath(__file__))
        _TOOL = load_tool(osp.join(here, '..', '..'),
                          'analysis_tools/pad_complexity.py')
    return _TOOL


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------
def test_config_set_is_complete(repo_root):
    found = sorted(
        osp.splitext(osp.basename(p))[0]
        for p in glob.glob(osp.join(repo_root, 'configs', 'pad_imagenet',
                                    '*.py')) +
        glob.glob(osp.join(repo_root, 'configs', 'pad_finegrained', '*.py')))
    expected = sorted(IMAGENET + ['pad_' + n for n in IMAGENET] +
                      FINEGRAINED + ['pad_' + n for n in FINEGRAINED])
    assert found == expected


@pytest.mark.parametrize('name', IMAGENET + FINEGRAINED)
def test_pad_config_is_regular_plus_placement(repo_root, name):
    """Regular and PAD side by side: the PAD config differs from the regular
    one only in the backbone placement, its init checkpoint and the tau
    hook; both inherit mmpretrain and import pad_mm."""
    reg = load_cfg(_cfg_path(repo_root, name))
    pad = load_cfg(_cfg_path(repo_root, 'pad_' + name))
    for cfg in (reg, pad):
        assert cfg.custom_imports == dict(imports=['pad_mm'],
                                          allow_failed_imports=False)
        assert cfg.default_scope == 'mmpretrain'
    with open(_cfg_path(repo_root, name)) as f:
        assert "'mmpretrain::" in f.read()
    key = _backbone_key(name)
    fg = name in FINEGRAINED
    bb = pad.model.backbone
    assert bb.type == 'PADBackbone'
    assert bb.base_type == reg.model.backbone.type
    assert bb.pad_cfg.dilations == ((1, 2, 3) if fg else (1, 2, 4))
    assert bb.pad_cfg.aggregation == 'markov'
    assert pad.custom_hooks == [dict(type='PADTauHook', schedule='exp',
                                     tau_start=1.0, tau_end=0.1)]
    assert 'custom_hooks' not in reg
    a, b = reg.to_dict(), pad.to_dict()
    a['model']['backbone'].pop('type')
    for k in ('type', 'base_type', 'pad_cfg'):
        b['model']['backbone'].pop(k)
    b.pop('custom_hooks')
    if fg:
        ra = a['model']['backbone']['init_cfg'].pop('checkpoint')
        rb = b['model']['backbone']['init_cfg'].pop('checkpoint')
        assert rb == ra.replace('checkpoints/imagenet/',
                                'checkpoints/imagenet/pad_')
    a.pop('filename', None), b.pop('filename', None)
    assert a == b


@pytest.mark.parametrize('name', IMAGENET)
def test_imagenet_recipe(repo_root, name):
    cfg = load_cfg(_cfg_path(repo_root, name))
    batch, epochs = IMAGENET_RECIPE[_backbone_key(name)]
    assert 8 * cfg.train_dataloader.batch_size == batch
    assert f'_8xb{cfg.train_dataloader.batch_size}-{epochs}e_' in name
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.auto_scale_lr.base_batch_size == batch
    assert cfg.train_dataloader.dataset.type == 'ImageNet'
    assert cfg.val_evaluator.type == 'Accuracy'
    assert tuple(cfg.val_evaluator.topk) == (1, 5)
    if epochs == 120:
        assert cfg.param_scheduler.milestones == [30, 60, 90]


@pytest.mark.parametrize('name', FINEGRAINED)
def test_finegrained_recipe(repo_root, name):
    cfg = load_cfg(_cfg_path(repo_root, name))
    crop = int(name.split('-')[-1][:-2])
    ds = name.split('_')[-1].split('-')[0]
    assert 8 * cfg.train_dataloader.batch_size == 256
    assert cfg.train_cfg.max_epochs == 120
    assert cfg.optim_wrapper.optimizer.lr == 0.01
    assert cfg.model.head.num_classes == FG_DATASETS[ds]
    train, val = cfg.train_dataloader.dataset, cfg.val_dataloader.dataset
    assert train.type == val.type == {'stanfordcars': 'StanfordCars',
                                      'aircraft': 'FGVCAircraft'}[ds]
    assert (train.split, val.split) == (
        ('train', 'test') if ds == 'stanfordcars' else ('trainval', 'test'))
    tp = {t['type']: t for t in train.pipeline}
    vp = {t['type']: t for t in val.pipeline}
    assert tp['RandomResizedCrop']['scale'] == crop
    assert vp['CenterCrop']['crop_size'] == crop
    assert vp['ResizeEdge']['scale'] == crop * 256 // 224
    init = cfg.model.backbone.init_cfg
    imagenet = FG_BACKBONES[_backbone_key(name)]
    assert init.type == 'CheckedPretrained'
    assert init.checkpoint == f'checkpoints/imagenet/{imagenet}.pth'
    assert osp.isfile(_cfg_path(repo_root, imagenet))


@pytest.mark.parametrize('name', IMAGENET + ['pad_' + n for n in IMAGENET])
def test_imagenet_config_trains_and_validates(imagenet_runs, name):
    res = imagenet_runs.get(name)
    key = _backbone_key(name)
    stats = res['stats']
    # p# of the regular network (1000-class head) within 1% of published
    assert abs(stats['p'] - PUBLISHED_P[key]) / PUBLISHED_P[key] < 0.01
    if name.startswith('pad_'):
        assert stats['dp'] == EXPECTED_DP[key]
        assert stats['pad_layers'] == ['backbone.' + n
                                       for n in PAD_LAYERS[key]]
        # same p# as the regular model: conversion adds only the priors
        assert stats['p'] == imagenet_runs.get(name[4:])['stats']['p']
    else:
        assert stats['dp'] == 0 and stats['pad_layers'] == []


@pytest.fixture(scope='module')
def fg_data(tmp_path_factory):
    base = tmp_path_factory.mktemp('fg_data')
    return {
        'stanfordcars': (str(base / 'stanford_cars'),
                         make_stanford_cars(str(base / 'stanford_cars'))),
        'aircraft': (str(base / 'fgvc-aircraft-2013b'),
                     make_aircraft(str(base / 'fgvc-aircraft-2013b'))),
    }


def test_generated_finegrained_data_read_by_mmpretrain(fg_data):
    from mmpretrain.datasets import FGVCAircraft, StanfordCars
    root, test_labels = fg_data['stanfordcars']
    tr = StanfordCars(data_root=root, split='train')
    te = StanfordCars(data_root=root, split='test')
    assert [d['gt_label'] for d in tr] == [0, 5, 7, 195]
    assert [d['gt_label'] for d in te] == test_labels
    assert osp.isfile(tr[0]['img_path'])
    root, test_labels = fg_data['aircraft']
    tr = FGVCAircraft(data_root=root, split='trainval')
    te = FGVCAircraft(data_root=root, split='test')
    assert [d['gt_label'] for d in tr] == [0, 3, 50, 99]
    assert [d['gt_label'] for d in te] == test_labels
    assert osp.isfile(te[1]['img_path'])


_LAST_FG_TRIP = {}


def _finegrained_trip(path, work_dir, data_root):
    """``run_trip`` of a fine-grained config at 64 px. The 224 and 448 px
    configs of a backbone and data set differ only in their crops, which
    the shrinking sets to 64 px for both: when the shrunk config (apart
    from its work dir and the unused pipeline variables) equals the one of
    the previous run, that run is the run of this config too."""
    shrunk = tiny_cfg(path, work_dir, data_root, 64).to_dict()
    for key in ('filename', 'work_dir', 'train_pipeline', 'test_pipeline'):
        shrunk.pop(key, None)
    key = json.dumps(shrunk, sort_keys=True, default=repr)
    if _LAST_FG_TRIP.get('key') != key:
        _LAST_FG_TRIP.clear()  # one run kept at a time (memory)
        _LAST_FG_TRIP.update(key=key, trip=run_trip(
            path, work_dir, data_root, 64, keep_all=True))
    return _LAST_FG_TRIP['trip']


@pytest.mark.parametrize('name', FINEGRAINED + ['pad_' + n
                                               for n in FINEGRAINED])
def test_finegrained_config_trains_from_imagenet_checkpoint(
        repo_root, imagenet_runs, fg_data, tmp_path, name):
    pad = name.startswith('pad_')
    key = _backbone_key(name)
    ds = name.split('_')[-1].split('-')[0]
    data_root, val_labels = fg_data[ds]
    cfg_path = _cfg_path(repo_root, name)
    documented = load_cfg(cfg_path).model.backbone.init_cfg.checkpoint
    # the documented checkpoint is the one an ImageNet config of this zoo
    # writes; use the one our ImageNet run of that config saved
    imagenet_name = osp.splitext(osp.basename(documented))[0]
    ckpt = imagenet_runs.get(imagenet_name)['ckpt']
    cfg_file = tmp_path / 'cfg.py'
    cfg = load_cfg(cfg_path)
    cfg.model.backbone.init_cfg.checkpoint = ckpt
    cfg.dump(str(cfg_file))
    runner, snap, top1, own, n = _finegrained_trip(
        str(cfg_file), tmp_path / 'work', data_root)
    _check_trip(name, runner, snap, top1, own, n, val_labels,
                PAD_LAYERS_FG[key] if pad else [], (1, 2, 3))
    assert runner.model.head.fc.out_features == FG_DATASETS[ds]
    # the backbone started from the ImageNet weights
    saved = torch.load(ckpt, weights_only=False)['state_dict']
    backbone = {k: v for k, v in snap.state.items()
                if k.startswith('backbone.')}
    # a PAD layer's tau (set by the tau schedule) and options are its own
    own_buffers = ('.pad_tau', '.pad_dilations')
    not_loaded = sorted(k for k in backbone if k not in saved
                        and not k.endswith(own_buffers))
    for k in backbone:
        if k in saved and not k.endswith(own_buffers) and \
                '.prior.' not in k:
            assert torch.equal(backbone[k], saved[k]), k
    if pad:
        # the ImageNet PAD priors were trained for (1, 2, 4): the configs
        # (paper: (1, 2, 3)) re-initialise them instead of reusing them
        for k, v in backbone.items():
            if k.endswith('.pad_dilations'):
                native = 2 if '.layer7.' in k else 1
                assert v.tolist() == [native * d for d in (1, 2, 3)], k
            if k.endswith('.prior.input_weight'):
                assert torch.count_nonzero(v) == 0, k
    if pad and key == 'drn-c-26':
        # the ImageNet PAD-DRN has PAD layers in layer8 only: the layer7
        # priors of the fine-grained model start from their init
        assert not_loaded == sorted(
            f'backbone.layer7.0.conv{i}.prior.{w}' for i in (1, 2)
            for w in ('input_bias', 'input_weight', 'act.log_scale'))
    else:
        assert not_loaded == []


@pytest.mark.parametrize('name', [
    'mobilenet-v2_8xb32-120e_aircraft-224px',
    'pad_drn-c-26_8xb32-120e_stanfordcars-448px'
])
def test_finegrained_missing_checkpoint_stops_before_training(
        repo_root, fg_data, tmp_path, name):
    ds = name.split('_')[-1].split('-')[0]
    cfg = tiny_cfg(_cfg_path(repo_root, name), tmp_path / 'work',
                   fg_data[ds][0])
    cfg.model.backbone.init_cfg.checkpoint = str(
        tmp_path / 'checkpoints' / 'imagenet' / 'absent.pth')
    runner = build_runner(cfg)
    with pytest.raises(FileNotFoundError, match='absent.pth'):
        runner.train()
    assert runner.iter == 0


def test_complexity_tool_table_and_csv(repo_root, tmp_path, capsys):
    tool = _tool()
    names = ['drn-c-26_8xb24-120e_in1k', 'pad_drn-c-26_8xb24-120e_in1k',
             'mobilenet-v2_8xb32-300e_in1k',
             'pad_mobilenet-v2_8xb32-300e_in1k',
             'pad_resnet50_8xb32-120e_stanfordcars-448px']
    out = tmp_path / 'complexity.csv'
    rows = tool.main([_cfg_path(repo_root, n) for n in names] +
                     ['--out', str(out)])
    printed = capsys.readouterr().out
    for n in names:
        assert n in printed
    assert 'dp#/p# (%)' in printed
    with open(out) as f:
        got = {r['config']: r for r in csv.DictReader(f)}
    assert list(got) == names
    assert [r['config'] for r in rows] == names
    drn, pdrn = got[names[0]], got[names[1]]
    assert int(drn['p']) == int(pdrn['p'])
    assert abs(int(drn['p']) - 21.1e6) / 21.1e6 < 0.01
    assert int(drn['dp']) == 0 and drn['pad_layers'] == ''
    assert int(pdrn['dp']) == EXPECTED_DP['drn-c-26']
    assert float(pdrn['dp_over_p_percent']) == pytest.approx(
        100 * 3080 / int(pdrn['p']), rel=1e-5)
    assert pdrn['pad_layers'] == \
        'backbone.layer8.0.conv1;backbone.layer8.0.conv2'
    assert pdrn['model'] == 'PADBackbone(DRN)'
    mbv2, pmbv2 = got[names[2]], got[names[3]]
    assert abs(int(mbv2['p']) - 3.5e6) / 3.5e6 < 0.01
    assert int(pmbv2['dp']) == EXPECTED_DP['mobilenet-v2']
    # fine-grained ResNet-50 (196 classes), (1, 2, 3) options: same D
    fg = got[names[4]]
    assert int(fg['dp']) == EXPECTED_DP['resnet50']
    # torchvision's ResNet-50 has 25,557,032 parameters with its 1000-class
    # fc; here the fc has 196 classes
    assert int(fg['p']) == 25_557_032 - 2048 * 1000 - 1000 + 2048 * 196 + 196
    with pytest.raises(FileNotFoundError, match='nope.py'):
        tool.main([str(tmp_path / 'nope.py')])
