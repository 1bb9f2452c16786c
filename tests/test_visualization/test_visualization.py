"""What PAD learned: dilation statistics metric and hooks, receptive
fields, FLOPs, and the analysis tools on the demo and a cls config."""
import glob
import json
import math
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

import pad_mm.cls  # noqa: F401  (registers pad_mm for mmpretrain)
import pad_mm.seg  # noqa: F401  (and for mmseg)
from pad_mm.apis import load_model
from pad_mm.evaluation import (PADDilationMetric, PADRecorder, count_flops,
                               pad_layer_flops)
from pad_mm.models import PADConv2d, pad_layers
from pad_mm.ops import available_impls
from pad_mm.visualization import (HIST_SIZE, effective_receptive_field,
                                  grid_size, sampled_positions)

from helpers.tools import load_tool
from helpers.training import tiny_demo_cfg

PAD_CFG = 'configs/demo/pad_deeplabv3plus_r18_textures.py'
VANILLA_CFG = 'configs/demo/deeplabv3plus_r18_textures.py'


def _tool(repo_root, name):
    return load_tool(repo_root, f'analysis_tools/{name}.py')


def _png_size(path):
    img = cv2.imread(str(path))
    assert img is not None, path
    return img.shape[1], img.shape[0]


# ---------------------------------------------------------------- metric

def _identity_prior_layer():
    """A PAD layer whose hidden priors equal its 3-channel input."""
    layer = PADConv2d(3, 4, 3, padding=1, dilations=(1, 2, 4), act_cfg=None)
    with torch.no_grad():
        layer.prior.input_weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        layer.prior.input_bias.zero_()
    return nn.Sequential(layer).eval()


def _hand_stats(logit_rows, dils=(1, 2, 4)):
    """mean, sigma^2 and argmax histogram, by hand, over pixel logits."""
    means, variances, hist = [], [], [0, 0, 0]
    for row in logit_rows:
        z = sum(math.exp(v) for v in row)
        p = [math.exp(v) / z for v in row]
        e = sum(pk * d for pk, d in zip(p, dils))
        e2 = sum(pk * d * d for pk, d in zip(p, dils))
        means.append(e)
        variances.append(e2 - e * e)
        hist[row.index(max(row))] += 1
    n = len(logit_rows)
    return sum(means) / n, sum(variances) / n, [h / n for h in hist], means


def test_sigma2_metric_equals_hand_computation():
    # two batches of 1x2x2 pixels; logits (h_1, h_2, h_4) per pixel
    batches = [
        [[2.0, 0.0, -1.0], [0.0, 1.5, 0.0], [-1.0, 0.0, 3.0],
         [0.5, 0.5, 0.2]],
        [[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [-3.0, 2.0, 1.0],
         [0.0, 0.1, 4.0]],
    ]
    model = _identity_prior_layer()
    metric = PADDilationMetric()
    with pytest.raises(RuntimeError, match='PADDilationStatsHook'):
        metric.process({}, [None])
    metric.bind(model)
    for rows in batches:
        x = torch.tensor(rows, dtype=torch.float32).T.reshape(1, 3, 2, 2)
        with torch.no_grad():
            model(x)
        metric.process({}, [None])
    metric.unbind()
    res = metric.evaluate(size=2)
    mean, var, hist, _ = _hand_stats([r for b in batches for r in b])
    name = '0'
    assert res['pad/var_dilation'] == pytest.approx(var, rel=1e-9)
    assert res['pad/mean_dilation'] == pytest.approx(mean, rel=1e-9)
    assert res[f'pad/{name}/var_dilation'] == pytest.approx(var, rel=1e-9)
    for d, f in zip((1, 2, 4), hist):
        assert res[f'pad/{name}/frac_d{d}'] == pytest.approx(f)
    assert res[f'pad/{name}/chosen_mean'] == pytest.approx(
        sum(f * d for f, d in zip(hist, (1, 2, 4))))
    # nothing is recorded after unbinding; the layer keeps no state
    assert not model[0]._forward_hooks and not model[0].probe._forward_hooks


def test_recorder_needs_pad_layers():
    with pytest.raises(ValueError, match='no adaptive PAD layer'):
        PADRecorder(nn.Sequential(nn.Conv2d(3, 3, 3)))


# ---------------------------------------------------------------- ERF / RF

@pytest.mark.parametrize('dilation,extent,points', [(1, 7, 49), (2, 13, 49)])
def test_erf_support_of_three_convs(dilation, extent, points):
    torch.manual_seed(0)
    net = nn.Sequential(*[
        nn.Conv2d(2, 2, 3, padding=dilation, dilation=dilation, bias=False)
        for _ in range(3)
    ]).double()
    x = torch.randn(1, 2, 31, 31, dtype=torch.float64)
    erf = effective_receptive_field(net, x, (15, 15)).numpy()
    ys, xs = np.nonzero(erf)
    assert ys.max() - ys.min() + 1 == extent
    assert xs.max() - xs.min() + 1 == extent
    assert (ys.min(), xs.min()) == (15 - extent // 2, 15 - extent // 2)
    assert len(ys) == points  # dilation 2: only even offsets are reached
    if dilation == 2:
        assert ((ys - 15) % 2 == 0).all() and ((xs - 15) % 2 == 0).all()


def test_sampled_positions_follow_chosen_dilation():
    chosen = np.ones((9, 9), int)
    chosen[4, 4] = 4
    trace = [dict(kernel=3, stride=1, in_size=(9, 9), out_size=(9, 9),
                  dilation=1),
             dict(kernel=3, stride=1, in_size=(9, 9), out_size=(9, 9),
                  dilation=chosen)]
    mask = sampled_positions(trace, (4, 4))
    # second layer samples rows/cols 0, 4, 8; the first widens each by 1
    expected = np.zeros((9, 9), bool)
    for y in (0, 4, 8):
        for x in (0, 4, 8):
            expected[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = True
    assert (mask == expected).all()
    plain = sampled_positions([dict(trace[0]), dict(trace[0])], (4, 4))
    assert plain.sum() == 25


# ---------------------------------------------------------------- FLOPs

def _torch_flops(fn):
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


@pytest.mark.parametrize('aggregation', ['markov', 'gated'])
def test_pad_layer_flops_hard_is_plain_conv_plus_prior(aggregation):
    x = torch.randn(2, 8, 10, 12)
    pad = PADConv2d(8, 16, 3, stride=2, padding=1, dilations=(1, 2, 4),
                    aggregation=aggregation).eval()
    plain = nn.Conv2d(8, 16, 3, stride=2, padding=1)
    h_prev = torch.zeros(2, 3, 5, 6)
    prior = _torch_flops(lambda: pad.prior(x, h_prev if aggregation ==
                                           'gated' else None))
    conv = _torch_flops(lambda: plain(x))
    flops = pad_layer_flops(pad, tuple(x.shape))
    assert flops['hard'] == conv + prior
    assert flops['prior'] == prior and flops['conv'] == conv
    assert flops['soft'] == 3 * conv + prior + flops['mixing']
    assert flops['mixing'] == 2 * 3 * 16 * 2 * 5 * 6


def test_count_flops_replaces_pad_layer_and_flags_uncounted():

    class Scale(nn.Module):  # a weight the counter cannot see

        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(4, 1, 1, 1))

        def forward(self, x):
            return x * self.weight.view(1, 4, 1, 1)

    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        PADConv2d(4, 4, 3, padding=1, dilations=(1, 2), impl='reference'),
        Scale(), nn.Conv2d(4, 2, 1)).eval()
    x = torch.randn(1, 3, 8, 8)
    rep = count_flops(model, lambda: model(x))
    plain = _torch_flops(lambda: model[0](x)) + 2 * 2 * 4 * 64
    pad = pad_layer_flops(model[1], (1, 4, 8, 8))
    assert rep.flops == plain + pad['hard'] == rep.flops_hard
    assert rep.flops_soft == plain + pad['soft']
    # the reference implementation runs both dilations, even in hard mode
    assert rep.pad_layers[0].measured == 2 * pad['conv'] + pad['prior']
    assert rep.flops_measured == plain + 2 * pad['conv'] + pad['prior']
    assert rep.uncounted == ['2 (Scale)']
    # U_h (D x C_in) + D biases + rho of the default f (ScaledTanh)
    assert rep.params_pad_prior == 2 * 4 + 2 + 1
    if 'im2col' in available_impls():  # sparse hard path: one GEMM
        model[1].impl = 'im2col'
        rep = count_flops(model, lambda: model(x))
        assert rep.pad_layers[0].measured == pad['hard']
        assert rep.flops_measured == rep.flops_hard


# ---------------------------------------------------------------- tools

@pytest.fixture(scope='module')
def demo_ckpts(repo_root, tmp_path_factory):
    """Checkpoints of the demo PAD and vanilla models (random weights, PAD
    priors perturbed so that the layers choose different dilations) and a
    96x96 image."""
    root = tmp_path_factory.mktemp('vis')
    out = {}
    for key, cfg in (('pad', PAD_CFG), ('vanilla', VANILLA_CFG)):
        model, _ = load_model(osp.join(repo_root, cfg))
        torch.manual_seed(0)
        for _, m in pad_layers(model):
            nn.init.normal_(m.prior.input_weight, std=0.5)
            nn.init.zeros_(m.prior.input_bias)
            m.tau = 0.4  # a "trained" tau, saved in the checkpoint
        out[key] = str(root / f'{key}.pth')
        torch.save({'state_dict': model.state_dict(), 'meta': {}}, out[key])
    img = (np.random.RandomState(0).rand(96, 96, 3) * 255).astype(np.uint8)
    out['image'] = str(root / 'texture.png')
    cv2.imwrite(out['image'], img)
    return out


def test_visualize_dilation_tool(repo_root, demo_ckpts, tmp_path):
    tool = _tool(repo_root, 'visualize_dilation')
    res = tool.main([osp.join(repo_root, PAD_CFG), demo_ckpts['pad'],
                     demo_ckpts['image'], '--out-dir', str(tmp_path)])
    assert _png_size(tmp_path / 'texture_dilation.png') == grid_size(2, 5)
    data = json.loads((tmp_path / 'texture_dilation.json').read_text())
    assert set(data) >= {'config', 'checkpoint', 'image', 'image_size',
                         'figure', 'figure_size', 'mean_dilation',
                         'var_dilation', 'layers'}
    assert data['image_size'] == [96, 96]
    names = [lay['name'] for lay in data['layers']]
    assert names == [f'backbone.layer4.{b}.conv{c}' for b in (0, 1)
                     for c in (1, 2)]
    # the conversion report of the loaded model (trained tau included)
    assert [r['layer'] for r in data['pad_conversion']] == names
    assert all(r['dilations'] == [1, 2, 4] and r['native_dilation'] == 1
               and r['aggregation'] == 'markov' and r['tau'] == 0.4
               for r in data['pad_conversion'])
    chosen_seen = set()
    for lay in data['layers']:
        assert set(lay) >= {'dilations', 'map_size', 'mean_dilation',
                            'var_dilation', 'spatial_var', 'chosen_hist',
                            'expected_csv', 'chosen_csv'}
        assert lay['map_size'] == [12, 12]  # output stride 8
        exp = np.loadtxt(tmp_path / lay['expected_csv'], delimiter=',')
        chosen = np.loadtxt(tmp_path / lay['chosen_csv'], delimiter=',')
        assert exp.shape == chosen.shape == (12, 12)
        assert exp.mean() == pytest.approx(lay['mean_dilation'], rel=1e-5)
        assert ((exp >= 1) & (exp <= 4)).all()
        for d, f in lay['chosen_hist'].items():
            assert (chosen == int(d)).mean() == pytest.approx(f)
        chosen_seen |= set(np.unique(chosen).astype(int).tolist())
    assert len(chosen_seen) > 1  # the perturbed priors choose differently
    assert res['var_dilation'] == data['var_dilation'] > 0


def test_visualize_rf_tool(repo_root, demo_ckpts, tmp_path):
    tool = _tool(repo_root, 'visualize_rf')
    tool.main([osp.join(repo_root, PAD_CFG), demo_ckpts['pad'],
               demo_ckpts['image'], '--out-dir', str(tmp_path),
               '--baseline-config', osp.join(repo_root, VANILLA_CFG),
               '--baseline-checkpoint', demo_ckpts['vanilla'],
               '--pixels', '0,0', '48,48'])
    assert _png_size(tmp_path / 'rf.png') == grid_size(2, 2, False)
    data = json.loads((tmp_path / 'rf.json').read_text())
    assert set(data) >= {'image', 'layer', 'pad_layers', 'pixels', 'models',
                         'figure', 'figure_size'}
    assert [m['label'] for m in data['models']] == ['PAD', 'regular']
    for m in data['models']:
        assert len(m['units']) == 2
        for u in m['units']:
            assert set(u) >= {'pixel', 'rf_unit', 'rf_cells', 'rf_box',
                              'rf_num_positions', 'erf_box', 'erf_csv'}
            erf = np.loadtxt(tmp_path / u['erf_csv'], delimiter=',')
            assert erf.shape == (96, 96) and erf.max() > 0
    # regular: four 3x3 convs at dilation 1 from the corner unit (0, 0)
    # of the 12x12 grid reach rows/cols 0..4 -> 25 positions of 8x8 px
    regular = data['models'][1]['units'][0]
    assert regular['rf_unit'] == [0, 0]
    assert regular['rf_num_positions'] == 25
    assert regular['rf_box'] == [0.0, 0.0, 40.0, 40.0]
    pad = data['models'][0]['units'][0]
    assert pad['rf_num_positions'] >= 1


def test_visualize_activation_tool(repo_root, demo_ckpts, tmp_path):
    tool = _tool(repo_root, 'visualize_activation')
    tool.main([osp.join(repo_root, PAD_CFG), demo_ckpts['pad'],
               demo_ckpts['image'], '--out-dir', str(tmp_path),
               '--baseline-config', osp.join(repo_root, VANILLA_CFG),
               '--baseline-checkpoint', demo_ckpts['vanilla']])
    assert _png_size(tmp_path / 'activation.png') == grid_size(2, 3)
    data = json.loads((tmp_path / 'activation.json').read_text())
    assert data['layer'] == 'backbone.layer4.1'
    for m in data['models']:
        assert set(m) >= {'label', 'shape', 'mean', 'max',
                          'active_fraction', 'map_csv'}
        assert m['shape'] == [512, 12, 12]
        assert 0 < m['active_fraction'] < 1
        assert np.loadtxt(tmp_path / m['map_csv'],
                          delimiter=',').shape == (12, 12)


def test_get_flops_tool(repo_root, tmp_path):
    tool = _tool(repo_root, 'get_flops')
    out = tmp_path / 'flops.json'
    res = tool.main([osp.join(repo_root, PAD_CFG), '--out', str(out)])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(res))
    assert data['input_shape'] == [1, 3, 64, 64]
    assert len(data['pad_layers']) == 4
    for lay in data['pad_layers']:
        assert lay['hard'] == lay['conv'] + lay['prior']
        assert lay['soft'] == 3 * lay['conv'] + lay['prior'] + lay['mixing']
    assert data['flops'] == data['flops_hard'] < data['flops_soft']
    extra = sum(lay['soft'] - lay['hard'] for lay in data['pad_layers'])
    assert data['flops_soft'] - data['flops_hard'] == extra
    assert data['uncounted'] == []
    van = tool.main([osp.join(repo_root, VANILLA_CFG)])
    # hard PAD = vanilla + the prior convs exactly
    assert data['flops_hard'] == van['flops'] + sum(
        lay['prior'] for lay in data['pad_layers'])
    assert data['params'] == van['params'] + data['params_pad_prior']


CLS_CFG = """
_base_ = ['mmpretrain::_base_/models/resnet18.py',
          'mmpretrain::_base_/datasets/imagenet_bs32.py',
          'mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)
model = dict(
    backbone=dict(type='PADBackbone', base_type='ResNet',
                  pad_cfg=dict(layers=['layer4.*.conv2'], dilations=(1, 2),
                               aggregation='recurrent')),
    head=dict(num_classes=7))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=96, edge='short'),
    dict(type='CenterCrop', crop_size=96),
    dict(type='PackInputs')]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
"""


def test_tools_on_cls_config(repo_root, demo_ckpts, tmp_path):
    cfg_path = tmp_path / 'pad_r18_cls.py'
    cfg_path.write_text(CLS_CFG)
    model, cfg = load_model(str(cfg_path))
    assert cfg.default_scope == 'mmpretrain'
    torch.manual_seed(1)
    for _, m in pad_layers(model):
        nn.init.normal_(m.prior.input_weight, std=0.5)
        nn.init.zeros_(m.prior.input_bias)
    ckpt = str(tmp_path / 'cls.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    res = _tool(repo_root, 'visualize_dilation').main(
        [str(cfg_path), ckpt, demo_ckpts['image'], '--out-dir',
         str(tmp_path / 'dil')])
    assert res['image_size'] == [96, 96]
    assert [lay['map_size'] for lay in res['layers']] == [[3, 3], [3, 3]]
    assert _png_size(tmp_path / 'dil' / 'texture_dilation.png') == \
        grid_size(2, 3)
    flops = _tool(repo_root, 'get_flops').main(
        [str(cfg_path), '--shape', '96', '96'])
    assert flops['input_shape'] == [1, 3, 96, 96]
    assert [lay['hard'] - lay['conv'] - lay['prior']
            for lay in flops['pad_layers']] == [0, 0]
    # recurrent aggregation: U_h x and W_h h
    lay = flops['pad_layers'][0]
    assert lay['prior'] == 2 * 9 * (2 * 512 + 2 * 2)


# ---------------------------------------------------------------- hooks

def _tiny_cfg(repo_root, tmp_path):
    cfg = tiny_demo_cfg(repo_root, tmp_path / 'work', tmp_path / 'data',
                        max_iters=1, num_train=2, validate=True,
                        checkpoint_interval=100)
    cfg.custom_hooks = list(cfg.custom_hooks) + [
        dict(type='PADDilationStatsHook'),
        dict(type='PADDilationMapHook', indices=[1])
    ]
    cfg.visualizer.vis_backends = [
        dict(type='LocalVisBackend'),
        dict(type='TensorboardVisBackend')
    ]
    # mmengine keeps one Visualizer per name for the whole process: a fixed
    # name would reuse an earlier test's instance and its save_dir
    cfg.visualizer.name = f'visualizer_{tmp_path.name}'
    return cfg


def test_hooks_log_dilation_stats_and_maps(repo_root, tmp_path):
    from pad_mm.apis.runner import build_runner
    runner = build_runner(_tiny_cfg(repo_root, tmp_path))
    runner.train()
    metrics = {k.split('/', 1)[1]: v.current()
               for k, v in runner.message_hub.log_scalars.items()
               if k.startswith('val/pad/')}
    layers = [f'backbone.layer4.{b}.conv{c}' for b in (0, 1)
              for c in (1, 2)]
    assert {'pad/mean_dilation', 'pad/var_dilation'} <= set(metrics)
    for name in layers:
        fracs = [metrics[f'pad/{name}/frac_d{d}'] for d in (1, 2, 4)]
        assert sum(fracs) == pytest.approx(1.0)
        assert 0 <= metrics[f'pad/{name}/var_dilation'] <= 9
    # pooled sigma^2 = mean of the per-layer ones (equal-sized layers)
    assert metrics['pad/var_dilation'] == pytest.approx(np.mean(
        [metrics[f'pad/{n}/var_dilation'] for n in layers]))
    # local visualizer backend: scalars and pictures
    vis_dir = glob.glob(str(tmp_path / 'work' / '*' / 'vis_data'))[0]
    scalars = [json.loads(line) for line in
               open(osp.join(vis_dir, 'scalars.json'))]
    assert any('pad/var_dilation' in s for s in scalars)
    w, h = grid_size(2, 5)
    assert _png_size(osp.join(vis_dir, 'vis_image',
                              'pad_dilation_map_1_1.png')) == (w, h)
    assert _png_size(osp.join(vis_dir, 'vis_image',
                              'pad_dilation_histogram_1.png')) == HIST_SIZE
    # TensorBoard backend
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    events = glob.glob(osp.join(vis_dir, '**', 'events.out.tfevents.*'),
                       recursive=True)
    assert events
    acc = EventAccumulator(osp.dirname(events[0]))
    acc.Reload()
    assert 'pad/var_dilation' in acc.Tags()['scalars']
    assert {'pad_dilation_map_1', 'pad_dilation_histogram'} <= set(
        acc.Tags()['images'])
    # the recorder is gone after validation: PAD layers keep no hooks
    for _, m in pad_layers(runner.model):
        assert not m.probe._forward_hooks


def test_map_hook_bad_args():
    from pad_mm.engine.hooks.dilation_map_hook import PADDilationMapHook
    with pytest.raises(ValueError, match='indices'):
        PADDilationMapHook(indices=[-1])
    with pytest.raises(ValueError, match='interval'):
        PADDilationMapHook(interval=0)


def test_dilation_stats_tool(repo_root, demo_ckpts, tmp_path):
    tool = _tool(repo_root, 'dilation_stats')
    ds = 'test_dataloader.dataset'
    res = tool.main([
        osp.join(repo_root, PAD_CFG), demo_ckpts['pad'], '--out-dir',
        str(tmp_path / 'out'), '--cfg-options',
        f'{ds}.data_root={tmp_path / "data"}', f'{ds}.generate.size=32',
        f'{ds}.generate.num_train=1', f'{ds}.generate.num_val=3'
    ])
    data = json.loads((tmp_path / 'out' / 'dilation_stats.json').read_text())
    assert set(data) >= {'metrics', 'mean_dilation', 'var_dilation',
                         'layers'}
    assert 'mIoU' in data['metrics']
    assert data['metrics']['pad/var_dilation'] == pytest.approx(
        data['var_dilation']) == pytest.approx(res['var_dilation'])
    assert len(data['layers']) == 4
    for lay in data['layers']:
        assert sum(lay['hist']) == pytest.approx(1.0)
        assert lay['count'] == 3 * 4 * 4  # 3 images, 4x4 layer4 maps
    assert _png_size(tmp_path / 'out' / 'dilation_stats.png') == HIST_SIZE


def test_dilation_stats_tool_keeps_the_configs_own_pad_metric(repo_root,
                                                              tmp_path):
    """The main job's config states PADChoiceAgreementMetric (a
    PADDilationMetric): the tool adds no second one (whose keys would
    clash) and reports the agreement with the right dilation."""
    cfg = osp.join(repo_root, 'configs/demo/evidence/'
                   'pad_fcn_patchnet_evidence.py')
    model, _ = load_model(cfg)
    ckpt = str(tmp_path / 'pad.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    ds = 'test_dataloader.dataset'
    res = _tool(repo_root, 'dilation_stats').main([
        cfg, ckpt, '--out-dir', str(tmp_path / 'out'), '--cfg-options',
        f'{ds}.data_root={tmp_path / "data"}', f'{ds}.generate.size=64',
        f'{ds}.generate.num_train=1', f'{ds}.generate.num_val=2'])
    metrics = res['metrics']
    assert [lay['name'] for lay in res['layers']] == [
        f'backbone.convs.{i}.conv' for i in range(3)]
    for lay in res['layers']:
        assert lay['count'] == 2 * 16 * 16  # 2 images, 16x16 maps
        # a fresh model chooses its native d = 1 everywhere: it agrees
        # with the right dilation exactly on the d = 1 pixels
        assert lay['hist'] == [1.0, 0.0, 0.0]
        key = f'pad/{lay["name"]}/'
        assert metrics[key + 'agree_d1'] == 1.0
        assert metrics[key + 'agree_d4'] == 0.0
        assert 0.0 < metrics[key + 'agree'] < 1.0
