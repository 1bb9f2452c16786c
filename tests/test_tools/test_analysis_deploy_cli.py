"""get_flops.py (MACs first, FLOPs = 2 MACs, PAD-vs-regular line),
benchmark.py (PAD vs regular images/s), pytorch2onnx.py (--verify against
onnxruntime), browse_dataset.py, the --cfg-options key check and the
one-line config errors of the tools (--debug for the traceback)."""
import contextlib
import io
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.apis.cfg_keys import check_cfg_keys, closest_key
from pad_mm.apis.validate import PADConfigError
from pad_mm.utils import run_tool

from helpers.tools import load_tool

PAD_CFG = 'configs/demo/pad_deeplabv3plus_r18_textures.py'
REG_CFG = 'configs/demo/deeplabv3plus_r18_textures.py'


def slim_cfg(repo_root, tmp_path, config=PAD_CFG, size=32) -> str:
    cfg = Config.fromfile(osp.join(repo_root, config))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(tmp_path / 'data')
        cfg[loader].dataset.generate = dict(seed=2, num_train=2, num_val=2,
                                            size=size)
    cfg.model.data_preprocessor.size = (size, size)
    cfg.model.backbone.update(stem_channels=8, base_channels=8)
    cfg.model.decode_head.update(in_channels=64, channels=16,
                                 c1_in_channels=8, c1_channels=8)
    cfg.model.auxiliary_head.update(in_channels=32, channels=16)
    path = tmp_path / osp.basename(config)
    cfg.dump(str(path))
    return str(path)


def _run(tool, argv):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        result = tool.main(argv)
    return result, buf.getvalue()


@pytest.mark.parametrize('example', [(48, 48), (368, 368)],
                         ids=['full-graph', 'dominant-plus-sparse-graph'])
def test_onnx_runs_at_any_input_size(repo_root, tmp_path, example):
    """The export has dynamic batch, height and width: onnxruntime runs
    it at other and odd sizes and a batch of 2, matching PyTorch. A
    368x368 example records the dominant-dilation graph (layer4 at stride
    8: 46x46 >= SPARSE_MIN_PIXELS), 48x48 the all-pixels one."""
    pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    cfg = slim_cfg(repo_root, tmp_path, size=48)
    ckpt = _random_priors_checkpoint(cfg, tmp_path)
    tool = load_tool(repo_root, 'deployment/pytorch2onnx.py')
    path = str(tmp_path / 'm.onnx')
    wrapper, x = tool.export(cfg, str(ckpt), path, shape=example)
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for shape in [(2, 3, 64, 64), (1, 3, 97, 71), (1, 3, 33, 45)]:
        inp = torch.randn(shape, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            ref = wrapper(inp)
        got = torch.from_numpy(sess.run(None, {'input': inp.numpy()})[0])
        assert got.shape == ref.shape == (shape[0], 5, -(-shape[2] // 4),
                                          -(-shape[3] // 4))
        assert float((got - ref).abs().max()) <= 1e-4, shape
    assert tool.verify(path, wrapper, x, 1e-4, [(40, 56)]) <= 1e-4


# ------------------------------------------------------------------ FLOPs
def test_get_flops_macs_first_and_delta(repo_root, tmp_path):
    tool = load_tool(repo_root, 'analysis_tools/get_flops.py')
    pad, out = _run(tool, [osp.join(repo_root, PAD_CFG), '--shape', '32',
                           '32'])
    reg, _ = _run(tool, [osp.join(repo_root, REG_CFG), '--shape', '32',
                         '32'])
    # the tool's own lines (a log record, e.g. the conversion report, goes
    # to stdout too when mmengine's logger is first made in this call)
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines)
                 if line.startswith('input shape'))
    assert 'MACs = multiply-adds' in lines[first + 1]
    assert 'FLOPs = 2 x MACs' in lines[first + 1]
    assert pad['macs'] * 2 == pad['flops']
    assert pad['macs_soft'] * 2 == pad['flops_soft']
    # "regular" = the same model with plain convs = the vanilla config
    assert pad['flops_regular'] == reg['flops'] == reg['flops_hard']
    main = next(ln for ln in lines if ln.startswith('MACs:'))
    assert f'{pad["macs"] / 1e9:.4f} G' in main
    assert f'(FLOPs: {pad["flops"] / 1e9:.4f} G)' in main
    delta = next(ln for ln in lines if ln.startswith('PAD vs regular'))
    hard = 100 * (pad['flops_hard'] - reg['flops']) / reg['flops']
    soft = 100 * (pad['flops_soft'] - reg['flops']) / reg['flops']
    assert f'hard {hard:+.2f}%, soft {soft:+.2f}%' in delta
    assert 0 < hard < 0.5 and soft > 100  # priors only vs 3 branches


# -------------------------------------------------------------- benchmark
def test_benchmark_pad_vs_regular(repo_root, tmp_path):
    tool = load_tool(repo_root, 'analysis_tools/benchmark.py')
    cfg = slim_cfg(repo_root, tmp_path)
    res, out = _run(tool, [cfg, '--num-images', '3', '--warmup', '1',
                           '--out', str(tmp_path / 'bench.json')])
    assert res['pad_layers'] == 4 and res['num_images'] == 3
    assert set(res['images_per_s']) == {'PAD (hard)', 'regular'}
    for name, ips in res['images_per_s'].items():
        assert ips == pytest.approx(3 / res['seconds'][name])
    assert res['time_ratio_pad_over_regular'] == pytest.approx(
        res['seconds']['PAD (hard)'] / res['seconds']['regular'])
    assert 'images/s' in out and 'PAD / regular time' in out
    assert (tmp_path / 'bench.json').is_file()
    # an explicit regular config, and the errors
    reg = slim_cfg(repo_root, tmp_path, REG_CFG)
    res2, _ = _run(tool, [cfg, '--num-images', '1', '--warmup', '0',
                          '--compare', reg])
    assert res2['compare'] == reg
    with pytest.raises(PADConfigError, match='has PAD layers'):
        tool.main([reg, '--num-images', '1'])
    with pytest.raises(PADConfigError, match='--num-images'):
        tool.main([cfg, '--num-images', '0'])
    with pytest.raises(PADConfigError, match='without PAD layers'):
        tool.main([cfg, '--num-images', '1', '--compare', cfg])


def test_benchmark_regular_config_from_pad_backbone():
    from pad_mm.deploy import regular_config  # what benchmark.py uses
    tool_cfg = Config(dict(model=dict(backbone=dict(
        type='PADBackbone', base_type='ResNetV1c', depth=18,
        pad_cfg=dict(layers=['layer4.*.conv2'])))))
    reg = regular_config(tool_cfg)
    assert reg.model.backbone == dict(type='ResNetV1c', depth=18)
    assert tool_cfg.model.backbone.type == 'PADBackbone'  # untouched
    assert regular_config(Config(dict(model=dict(backbone=dict(
        type='ResNetV1c'))))) is None


# ----------------------------------------------------------------- export
def _random_priors_checkpoint(cfg, tmp_path):
    """A checkpoint of ``cfg``'s model whose priors are random: dilations
    vary from pixel to pixel (so a graph's dilation switch is covered)."""
    from pad_mm.apis import load_model
    from pad_mm.models import PADConv2d
    model, _ = load_model(cfg)
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, PADConv2d) and m.adaptive:
                # weights small enough that f = ScaledTanh does not
                # saturate (saturated options tie at the bound)
                for n, p in m.prior.named_parameters():
                    p.zero_() if 'bias' in n or 'log_scale' in n else \
                        p.normal_(0, 0.05)
    ckpt = tmp_path / 'random_priors.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    return ckpt


def test_pytorch2onnx_verify(repo_root, tmp_path):
    pytest.importorskip('onnx')
    pytest.importorskip('onnxruntime')
    from pad_mm.apis import load_model
    from pad_mm.models import PADConv2d
    cfg = slim_cfg(repo_root, tmp_path, size=48)
    ckpt = _random_priors_checkpoint(cfg, tmp_path)
    tool = load_tool(repo_root, 'deployment/pytorch2onnx.py')
    res, out = _run(tool, [cfg, str(ckpt), '--out',
                           str(tmp_path / 'm.onnx'), '--verify'])
    assert (tmp_path / 'm.onnx').is_file()
    assert res['input_shape'] == [1, 3, 48, 48]
    assert res['max_abs_diff'] <= 1e-4
    assert 'onnxruntime matches PyTorch on 4 inputs' in out
    # dynamic height and width: verified at 2x and at an odd size too
    assert res['verified_shapes'] == [[48, 48], [96, 96], [53, 51]]
    # the choices really vary (so the check covers the dilation switch)
    wrapper, x = tool.export(cfg, str(ckpt), str(tmp_path / 'm2.onnx'))
    chosen = []
    hooks = [m.probe.register_forward_hook(
        lambda mod, inp, o: chosen.append(inp[0].argmax(1)))
        for m in wrapper.modules() if isinstance(m, PADConv2d) and m.adaptive]
    with torch.no_grad():
        ref = wrapper(x)
    for h in hooks:
        h.remove()
    assert any(len(torch.unique(c)) > 1 for c in chosen)
    assert ref.shape == (1, 5, 12, 12)  # logits at 1/4 resolution
    # verify fails on a model that is not the exported one
    other = tool.TensorOutput(load_model(cfg)[0]).eval()
    with pytest.raises(AssertionError, match='differs from PyTorch'):
        tool.verify(str(tmp_path / 'm2.onnx'), other, x, 1e-4)
    with pytest.raises(PADConfigError, match='.onnx'):
        tool.main([cfg, str(ckpt), '--out', str(tmp_path / 'm.bin')])


# ---------------------------------------------------------- browse_dataset
def test_browse_dataset(repo_root, tmp_path):
    tool = load_tool(repo_root, 'analysis_tools/browse_dataset.py')
    cfg = slim_cfg(repo_root, tmp_path)
    written, _ = _run(tool, [cfg, '--output-dir', str(tmp_path / 'b'),
                             '--split', 'val', '--cfg-options',
                             'visualizer.name=vis_browse'])
    assert [osp.basename(w) for w in written] == ['000000.png', '000001.png']
    import mmcv
    img = mmcv.imread(written[0])
    assert img.shape == (32, 32, 3)
    with pytest.raises(PADConfigError, match='--max-images'):
        tool.main([cfg, '--output-dir', str(tmp_path / 'b'), '--max-images',
                   '0'])


# ------------------------------------------------- --cfg-options key check
def test_cfg_key_typo_names_closest_key(repo_root):
    train = load_tool(repo_root, 'train.py')
    with pytest.raises(PADConfigError) as info:
        train.main([osp.join(repo_root, PAD_CFG), '--cfg-options',
                    'train_cfg.max_iter=4'])
    assert info.value.field == '--cfg-options train_cfg.max_iter'
    assert "did you mean 'train_cfg.max_iters'" in str(info.value)


def test_benchmark_onnx_times_three_graphs_paired(repo_root, tmp_path):
    """benchmark_onnx.py: the vanilla, sparse-PAD and D-convs-PAD graphs,
    each matching PyTorch, timed in rounds of several calls, ratios to
    vanilla paired by round; the JSON it writes is what it returns."""
    pytest.importorskip('onnx')
    pytest.importorskip('onnxruntime')
    import json
    pad = slim_cfg(repo_root, tmp_path, size=32)
    reg = slim_cfg(repo_root, tmp_path, config=REG_CFG, size=32)
    ckpt = _random_priors_checkpoint(pad, tmp_path)
    tool = load_tool(repo_root, 'deployment/benchmark_onnx.py')
    out_dir = tmp_path / 'onnx'
    res, out = _run(tool, [pad, reg, '--pad-checkpoint', str(ckpt),
                           '--size', '32', '32', '--repeats', '3',
                           '--warmup', '1', '--out-dir', str(out_dir)])
    # the vanilla session is timed twice per round (A/A control)
    graphs = {'vanilla', 'pad_sparse', 'pad_reference', 'vanilla_again'}
    assert set(res['ms']) == set(res['ratio']) == graphs
    assert all(len(v) == 3 and min(v) > 0 for v in res['rounds_ms'].values())
    assert all(n >= 1 for n in res['calls_per_round'].values())
    assert res['session_config'] == {
        'session.intra_op.allow_spinning': '0'}
    for k in graphs:
        rounds = res['rounds_ms']
        assert res['ratio'][k] == pytest.approx(sorted(
            a / b for a, b in zip(rounds[k], rounds['vanilla']))[1])
    assert res['calls_per_round']['vanilla_again'] == res[
        'calls_per_round']['vanilla']
    assert max(res['max_abs_diff_vs_pytorch'].values()) <= 1e-4
    # the D-convs export has a conv per dilation, the vanilla one none
    assert res['nodes']['pad_reference']['Conv'] > res['nodes']['vanilla'][
        'Conv']
    assert res['nodes']['vanilla']['NonZero'] == 0
    assert max(res['differing_share'].values()) > 0  # random priors
    assert json.loads((out_dir / 'benchmark_onnx.json').read_text()) == \
        json.loads(json.dumps(res))
    assert '| pad_sparse |' in out and '| vanilla again (A/A) |' in out


def test_benchmark_pad_at_a_checkpoints_recorded_maps(repo_root, tmp_path):
    """benchmark_pad.py --index-source checkpoint:CONFIG:CKPT: one row per
    PAD layer and validation image, at the layer's real input and the
    index map it chose, timed against a plain conv at the dominant
    dilation (and that conv again, the A/A control)."""
    import json
    from pad_mm.apis import load_model
    from pad_mm.models import PADConv2d
    cfg = slim_cfg(repo_root, tmp_path, size=32)
    ckpt = _random_priors_checkpoint(cfg, tmp_path)
    tool = load_tool(repo_root, 'analysis_tools/benchmark_pad.py')
    out = tmp_path / 'ckpt.json'
    info, text = _run(tool, [
        '--index-source', f'checkpoint:{cfg}:{ckpt}', '--num-images', '2',
        '--repeats', '2', '--warmup', '0', '--out', str(out)])
    model, _ = load_model(cfg, str(ckpt))
    layers = [n for n, m in model.named_modules()
              if isinstance(m, PADConv2d)]
    res = info['results']
    assert [(r['layer'], r['image']) for r in res] == [
        (n, i) for n in layers for i in range(2)]
    for r in res:
        assert sum(r['shares']) == pytest.approx(1.0)
        assert r['differing_share'] == pytest.approx(1 - max(r['shares']))
        assert {'conv', 'auto', 'reference', 'conv_again'} <= set(r['ratio'])
        assert r['ratio']['conv'] == 1.0 and min(r['ms'].values()) > 0
    assert max(r['differing_share'] for r in res) > 0  # random priors
    lines = info['table'].splitlines()
    assert 'plain conv again / plain conv (A/A, median)' in lines[0]
    assert [ln.split(' | ')[0][2:] for ln in lines[2:]] == layers + [
        'all layers (sum of times)']
    assert json.loads(out.read_text())['table'] == info['table']
    assert info['table'] in text


def test_check_cfg_keys_rules():
    root = dict(train_cfg=dict(max_iters=10, val_interval=5),
                custom_hooks=[dict(type='PADTauHook', tau_end=0.2)],
                model=dict(backbone=dict(depth=18)), crop_size=(64, 64))
    ok = {'train_cfg.max_iters': 4, 'custom_hooks.0.tau_end': 0.1,
          'model.backbone.frozen_stages': 1,  # a new key, nothing like it
          'train_cfg.val_begin': 1}
    check_cfg_keys(root, ok, PADConfigError)
    cases = {
        'train_cfg.max_iter': "did you mean 'train_cfg.max_iters'",
        'train_cf.max_iters': "did you mean 'train_cfg'",
        'model.backbon.depth': "did you mean 'model.backbone'",
        'custom_hooks.1.tau_end': "'1' is not an index of custom_hooks",
        'custom_hooks.0.tau_ends': "did you mean 'custom_hooks.0.tau_end'",
        'crop_size.x': "crop_size",
        'model.backbone.depth.x': 'is a value',
    }
    for key, msg in cases.items():
        with pytest.raises(PADConfigError) as info:
            check_cfg_keys(root, {key: 1}, PADConfigError)
        assert msg in str(info.value), (key, str(info.value))
        assert info.value.field == f'--cfg-options {key}'
    with pytest.raises(ValueError, match='max_iter=4'):
        check_cfg_keys(root, {'train_cfg.max_iter': 4})
    assert closest_key('max_iter', ['max_iters', 'type']) == 'max_iters'
    assert closest_key('zzz', ['max_iters']) is None


# ------------------------------------------------------ one-line errors
def test_run_tool_one_line_or_traceback(capsys):
    def main(argv):
        raise PADConfigError('train_cfg.max_iters', 0, 'an int >= 1')

    with pytest.raises(SystemExit) as info:
        run_tool(main, ['cfg.py'])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0
    assert err.startswith("PADConfigError: train_cfg.max_iters=0; allowed: "
                          'an int >= 1')
    assert '--debug' in err
    with pytest.raises(PADConfigError):
        run_tool(main, ['cfg.py', '--debug'])

    def other(argv):
        raise KeyError('not a config error')

    with pytest.raises(KeyError):  # other errors keep their traceback
        run_tool(other, [])


def test_train_script_prints_one_line(repo_root, tmp_path):
    env = dict(os.environ, PYTHONPATH=repo_root, PYTHONWARNINGS='ignore')
    proc = subprocess.run(
        [sys.executable, osp.join(repo_root, 'tools', 'train.py'),
         osp.join(repo_root, PAD_CFG), '--cfg-options',
         'train_cfg.max_iter=4'], env=env, cwd=str(tmp_path),
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert 'Traceback' not in proc.stderr
    assert err[-1].startswith('PADConfigError: --cfg-options '
                              'train_cfg.max_iter=4')
    assert "did you mean 'train_cfg.max_iters'" in err[-1]
    assert not (tmp_path / 'work_dirs').exists()  # nothing started


def test_demo_config_draws_dilation_pictures(repo_root):
    cfg = Config.fromfile(osp.join(repo_root, PAD_CFG))
    types = [h['type'] for h in cfg.custom_hooks]
    assert types == ['PADTauHook', 'PADDilationStatsHook',
                     'PADDilationMapHook']
    assert cfg.custom_hooks[2]['indices'] == [0, 1]
