"""The ablation controls (configs/demo/ablation/): each is the
demo (model, data, schedule) with only layer4's 3x3 convs changed, builds,
and trains 2 iterations + validates on a tiny generated PAD-Textures set."""
from __future__ import annotations

import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.models import PADConv2d

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
ABL = 'configs/demo/ablation/'
VANILLA_DEMO = 'configs/demo/deeplabv3plus_r18_textures.py'
PAD_DEMO = 'configs/demo/pad_deeplabv3plus_r18_textures.py'
LAYER4 = [f'layer4.{b}.conv{c}' for b in (0, 1) for c in (1, 2)]

# config -> (demo it derives from, expected layer4 3x3 conv:
#            (class, dilation, aggregation, options, activation))
EXPECTED = {
    'vanilla.py': (VANILLA_DEMO, ('Conv2d', 1, None, None, None)),
    'fixed_d2.py': (VANILLA_DEMO, ('Conv2d', 2, None, None, None)),
    'fixed_d4.py': (VANILLA_DEMO, ('Conv2d', 4, None, None, None)),
    'static_mixture.py': (PAD_DEMO, ('PADConv2d', 1, 'static', (1, 2, 4),
                                     'Identity')),
    'pad_markov.py': (PAD_DEMO, ('PADConv2d', 1, 'markov', (1, 2, 4),
                                 'ScaledTanh')),
    'pad_gated.py': (PAD_DEMO, ('PADConv2d', 1, 'gated', (1, 2, 4),
                                'ScaledTanh')),
    'pad_recurrent.py': (PAD_DEMO, ('PADConv2d', 1, 'recurrent', (1, 2, 4),
                                    'ScaledTanh')),
    'pad_markov_d12.py': (PAD_DEMO, ('PADConv2d', 1, 'markov', (1, 2),
                                     'ScaledTanh')),
}


def _cfg(rel: str) -> Config:
    return Config.fromfile(osp.join(ROOT, rel))


def _build_backbone(cfg: Config) -> nn.Module:
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    return MODELS.build(cfg.model.backbone)


_VANILLA: list = []


def _vanilla_backbone() -> nn.Module:
    if not _VANILLA:
        _VANILLA.append(_build_backbone(_cfg(VANILLA_DEMO)))
    return _VANILLA[0]


def _describe(m: nn.Module):
    act = None
    if isinstance(m, PADConv2d):
        act = type(m.prior.act).__name__
        return (type(m).__name__, m.dilation[0], m.aggregation, m.dilations,
                act)
    return (type(m).__name__.replace('Conv2dAdaptivePadding', 'Conv2d'),
            m.dilation[0], None, None, None)


def test_all_eight_controls_exist():
    import glob
    found = sorted(osp.basename(p)
                   for p in glob.glob(osp.join(ROOT, ABL, '*.py')))
    assert found == sorted(EXPECTED)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_only_layer4_3x3_convs_differ(name):
    demo, want = EXPECTED[name]
    cfg, base = _cfg(ABL + name), _cfg(VANILLA_DEMO)
    # everything but the backbone (and the PAD demo's tau hook) is the
    # vanilla demo's: data, schedule, heads, optimizer, evaluation
    a, b = cfg.to_dict(), base.to_dict()
    for key in set(a) | set(b):
        if key in ('model', 'custom_hooks'):
            continue
        assert a.get(key) == b.get(key), key
    for key in set(a['model']) | set(b['model']):
        if key != 'backbone':
            assert a['model'].get(key) == b['model'].get(key), key
    assert a.get('custom_hooks') == _cfg(demo).to_dict().get('custom_hooks')
    assert a['train_cfg']['max_iters'] == 700

    net, ref = _build_backbone(cfg), _vanilla_backbone()
    convs = {n: m for n, m in net.named_modules()
             if isinstance(m, nn.Conv2d)}
    ref_convs = {n: m for n, m in ref.named_modules()
                 if isinstance(m, nn.Conv2d)}
    assert list(convs) == list(ref_convs)
    for n, m in convs.items():
        r = ref_convs[n]
        assert m.weight.shape == r.weight.shape, n
        assert m.stride == r.stride, n
        if n in LAYER4:
            assert _describe(m) == want, n
            d = want[1]
            assert m.padding == (d, d), n
        else:
            assert _describe(m) == _describe(r), n
            assert m.padding == r.padding, n
    # parameters: the base backbone's, plus the prior's for PAD layers
    keys = set(net.state_dict())
    ref_keys = set(ref.state_dict())
    assert ref_keys <= keys
    extra = keys - ref_keys
    # (and each PAD layer's tau and dilation-option buffers)
    buffers = {k for k in extra
               if k.rsplit('.', 1)[-1] in ('pad_tau', 'pad_dilations')}
    assert {k.rsplit('.', 1)[0] for k in buffers} == (
        set(LAYER4) if want[0] == 'PADConv2d' else set())
    extra -= buffers
    assert all('.prior.' in k and k.split('.prior.')[0] in LAYER4
               for k in extra)
    if want[2] == 'static':
        assert sorted(extra) == sorted(f'{n}.prior.static_bias'
                                       for n in LAYER4)
    # same output sizes as the vanilla backbone
    x = torch.randn(2, 3, 64, 64)
    net.eval()
    ref.eval()
    with torch.no_grad():
        outs, ref_outs = net(x), ref(x)
    assert [o.shape for o in outs] == [o.shape for o in ref_outs]


def _shrink(cfg: Config, data_root: str, work_dir: str) -> Config:
    gen = dict(seed=1, num_train=4, num_val=2, size=32)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
        cfg[loader].dataset.generate = gen
    cfg.train_dataloader.batch_size = 2
    cfg.model.data_preprocessor.size = (32, 32)
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    cfg.param_scheduler[0].end = 2
    cfg.default_hooks.checkpoint.interval = 3
    cfg.default_hooks.checkpoint.save_last = False
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    import uuid
    name = f'abl_{uuid.uuid4().hex[:10]}'
    cfg.experiment_name = name
    cfg.visualizer.name = f'vis_{name}'
    return cfg


@pytest.fixture
def fast_config_text(monkeypatch):
    """The Runner pretty-prints the config with yapf (seconds); the text is
    not under test here."""
    import mmengine.config.config as mm_config
    monkeypatch.setattr(mm_config, 'FormatCode',
                        lambda text, **kwargs: (text, True))


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_trains_two_iterations_and_validates(name, tmp_path_factory,
                                             tmp_path, fast_config_text):
    from pad_mm.apis.runner import build_runner
    data_root = str(tmp_path_factory.getbasetemp() / 'ablation_textures')
    cfg = _shrink(_cfg(ABL + name), data_root, str(tmp_path / 'w'))
    runner = build_runner(cfg)
    model = runner.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    runner.train()
    assert runner.iter == 2
    scalars = runner.message_hub.log_scalars
    assert torch.isfinite(torch.tensor(
        scalars['train/loss'].current())).item()
    assert 0.0 <= scalars['val/mIoU'].current() <= 100.0
    pads = [m for m in model.modules() if isinstance(m, PADConv2d)]
    assert len(pads) == (4 if EXPECTED[name][1][0] == 'PADConv2d' else 0)
    # the layer4 convs and their priors' input / static terms were trained
    # (hidden_* of the chain's first layer see h = 0: no gradient there)
    trained = [n for n in before
               if n.startswith('backbone.layer4.0.conv2') and
               n.rsplit('.', 1)[1] in ('weight', 'input_weight',
                                       'static_bias')]
    assert len(trained) == {None: 1, 'static': 2}.get(
        EXPECTED[name][1][2], 2)
    params = dict(model.named_parameters())
    for n in trained:
        assert not torch.equal(params[n].detach(), before[n]), n
