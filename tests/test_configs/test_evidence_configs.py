"""The evidence configs (configs/demo/evidence/): the eight controls of the
ablation re-made on PAD-Evidence. Each differs from the vanilla model only
in the backbone's three 3x3 convs; the PAD layers see maps of >= 32x32,
and the first one's input sees one texture cell (the patch stem); each trains 2
iterations and validates, reporting accuracy per true scale (and, with
PAD layers, the agreement of their choice with the right dilation)."""
from __future__ import annotations

import glob
import os.path as osp
import uuid

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.datasets import evidence_period
from pad_mm.models import PADConv2d

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
EV = 'configs/demo/evidence/'
ABL = EV + 'ablation/'
VANILLA = EV + 'fcn_patchnet_evidence.py'
PAD = EV + 'pad_fcn_patchnet_evidence.py'
LAYER1 = [f'convs.{i}.conv' for i in range(3)]

# config -> (base it derives from, the backbone's 3x3 convs: (class, dilation,
#            aggregation, options))
EXPECTED = {
    'evidence_vanilla.py': (VANILLA, ('Conv2d', 1, None, None)),
    'evidence_fixed_d2.py': (VANILLA, ('Conv2d', 2, None, None)),
    'evidence_fixed_d4.py': (VANILLA, ('Conv2d', 4, None, None)),
    'evidence_static_mixture.py': (PAD, ('PADConv2d', 1, 'static',
                                         (1, 2, 4))),
    'evidence_pad_markov.py': (PAD, ('PADConv2d', 1, 'markov', (1, 2, 4))),
    'evidence_pad_gated.py': (PAD, ('PADConv2d', 1, 'gated', (1, 2, 4))),
    'evidence_pad_recurrent.py': (PAD, ('PADConv2d', 1, 'recurrent',
                                        (1, 2, 4))),
    'evidence_pad_markov_d12.py': (PAD, ('PADConv2d', 1, 'markov',
                                         (1, 2))),
}


def _cfg(rel: str) -> Config:
    return Config.fromfile(osp.join(ROOT, rel))


def _build_backbone(cfg: Config) -> nn.Module:
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    return MODELS.build(cfg.model.backbone)


def _describe(m: nn.Module):
    if isinstance(m, PADConv2d):
        return (type(m).__name__, m.dilation[0], m.aggregation, m.dilations)
    return (type(m).__name__, m.dilation[0], None, None)


def test_all_eight_controls_exist():
    found = sorted(osp.basename(p)
                   for p in glob.glob(osp.join(ROOT, ABL, '*.py')))
    assert found == sorted(EXPECTED)


def test_pad_configs_keep_the_default_prior_settings():
    # f and the initial margin come from the PAD layer's defaults, so the
    # configs follow them when they change
    for name, (base, want) in EXPECTED.items():
        pad_cfg = _cfg(ABL + name).model.backbone.get('pad_cfg', {})
        assert 'act_cfg' not in pad_cfg and 'init_margin' not in pad_cfg


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_only_the_backbone_3x3_convs_differ(name):
    base, want = EXPECTED[name]
    cfg, ref_cfg = _cfg(ABL + name), _cfg(VANILLA)
    a, b = cfg.to_dict(), ref_cfg.to_dict()
    if name == 'evidence_static_mixture.py':
        # its one other delta: the learned bias may move (10x lr, no decay)
        paramwise = a['optim_wrapper'].pop('paramwise_cfg')
        assert paramwise == dict(custom_keys={'static_bias': dict(
            lr_mult=10.0, decay_mult=0.0)})
    for key in set(a) | set(b):
        if key in ('model', 'custom_hooks', 'val_evaluator',
                   'test_evaluator'):
            continue
        assert a.get(key) == b.get(key), key
    for key in set(a['model']) | set(b['model']):
        if key != 'backbone':
            assert a['model'].get(key) == b['model'].get(key), key
    base_dict = _cfg(base).to_dict()
    for key in ('custom_hooks', 'val_evaluator', 'test_evaluator'):
        assert a.get(key) == base_dict.get(key), key

    net, ref = _build_backbone(cfg), _build_backbone(ref_cfg)
    convs = {n: m for n, m in net.named_modules()
             if isinstance(m, nn.Conv2d)}
    ref_convs = {n: m for n, m in ref.named_modules()
                 if isinstance(m, nn.Conv2d)}
    assert list(convs) == list(ref_convs)
    for n, m in convs.items():
        r = ref_convs[n]
        assert m.weight.shape == r.weight.shape, n
        if n in LAYER1:
            assert _describe(m) == want, n
            assert m.padding == (want[1], want[1]), n
        else:
            assert _describe(m) == _describe(r), n
            assert m.padding == r.padding, n
    x = torch.randn(2, 3, 128, 128)
    net.eval()
    ref.eval()
    with torch.no_grad():
        outs, ref_outs = net(x), ref(x)
    assert [o.shape for o in outs] == [o.shape for o in ref_outs]


def test_pad_layers_see_32x32_maps_and_a_small_receptive_field():
    cfg = _cfg(ABL + 'evidence_pad_markov.py')
    net = _build_backbone(cfg)
    net.eval()
    seen = {}
    hooks = [m.register_forward_pre_hook(
        lambda mod, inp, n=n: seen.__setitem__(n, inp[0]))
        for n, m in net.named_modules() if n in LAYER1]
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    net(x)
    for h in hooks:
        h.remove()
    assert sorted(seen) == sorted(LAYER1)
    assert all(t.shape[-2:] == (32, 32) for t in seen.values())
    # receptive field of the first PAD layer's input: the input pixels
    # that move one central map pixel
    g, = torch.autograd.grad(seen['convs.0.conv'][0, :, 16, 16].sum(), x)
    rows = g.abs().sum((0, 1, 3)).nonzero().flatten()
    cols = g.abs().sum((0, 1, 2)).nonzero().flatten()
    extent = max(int(rows[-1] - rows[0]), int(cols[-1] - cols[0])) + 1
    gen = cfg.train_dataloader.dataset.generate
    # one texture cell (the patch stem), far below the largest scale
    assert extent == gen['stride'] == 4
    assert extent < evidence_period(max(gen['dilations']), gen['stride'])
    assert gen['texture'] == 'pairs' and gen['align_cells'] is True


def _shrink(cfg: Config, data_root: str, work_dir: str) -> Config:
    gen = dict(cfg.train_dataloader.dataset.generate, seed=1, num_train=4,
               num_val=2, size=64)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
        cfg[loader].dataset.generate = gen
    cfg.train_dataloader.batch_size = 2
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    cfg.param_scheduler[0].end = 2
    cfg.default_hooks.checkpoint.interval = 3
    cfg.default_hooks.checkpoint.save_last = False
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    name = f'ev_{uuid.uuid4().hex[:10]}'
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
    data_root = str(tmp_path_factory.getbasetemp() / 'evidence_data')
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
    accs = {k: scalars[k].current() for k in scalars
            if k.startswith('val/evidence/acc')}
    assert sorted(accs) == ['val/evidence/acc', 'val/evidence/acc_d1',
                            'val/evidence/acc_d2', 'val/evidence/acc_d4']
    assert all(0.0 <= v <= 100.0 for v in accs.values())
    pads = [n for n, m in model.named_modules()
            if isinstance(m, PADConv2d)]
    is_pad = EXPECTED[name][1][0] == 'PADConv2d'
    assert pads == ([f'backbone.{n}' for n in LAYER1] if is_pad else [])
    if is_pad:
        for n in LAYER1:
            agree = scalars[f'val/pad/backbone.{n}/agree'].current()
            const = scalars[f'val/pad/backbone.{n}/agree_const'].current()
            assert 0.0 <= agree <= 1.0 and 0.0 < const <= 1.0
    # the 3x3 convs (and the priors' input / static terms) were trained
    trained = [n for n in before
               if n.startswith('backbone.convs.1.conv') and
               n.rsplit('.', 1)[1] in ('weight', 'input_weight',
                                       'static_bias')]
    assert len(trained) == (2 if is_pad else 1)
    params = dict(model.named_parameters())
    for n in trained:
        assert not torch.equal(params[n].detach(), before[n]), n
    if name == 'evidence_static_mixture.py':
        # the static bias learns at 10x the rate, without weight decay
        groups = runner.optim_wrapper.optimizer.param_groups
        bias = params['backbone.convs.1.conv.prior.static_bias']
        group, = [g for g in groups if any(p is bias for p in g['params'])]
        assert group['initial_lr'] == pytest.approx(10 * 2e-3)
        assert group['weight_decay'] == 0.0


def test_preflight_accepts_an_evidence_set_generated_on_first_use(tmp_path):
    """The pre-flight of tools/train.py knows PAD-Evidence is written on
    first use (it refused a missing data_root before) and checks its
    generator keys."""
    from pad_mm.apis.validate_data import check_loader
    from pad_mm.models import PADConfigError
    ds = dict(type='PADEvidenceDataset', data_root=str(tmp_path / 'absent'),
              generate=dict(seed=1, num_train=4, num_val=2, size=128,
                            texture='dimers'),
              data_prefix=dict(img_path='images/train',
                               seg_map_path='annotations/train'))
    check_loader('train_dataloader', dict(dataset=ds))
    ds['generate'] = dict(seed=1, sise=128)
    with pytest.raises(PADConfigError, match='sise'):
        check_loader('train_dataloader', dict(dataset=ds))


@pytest.mark.parametrize('main,twin', [
    (VANILLA, ABL + 'evidence_vanilla.py'),
    (PAD, ABL + 'evidence_pad_markov.py')])
def test_main_job_configs_are_their_sweep_twins(main, twin):
    """The main job's configs are the sweep's vanilla and Markov PAD
    configs under another name, so the metafile and README state the
    sweep's results for them."""
    assert _cfg(main).to_dict() == _cfg(twin).to_dict()
