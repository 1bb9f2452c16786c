"""tools/deployment/freeze_pad.py (library: pad_mm.deploy): PAD layers that
do not adapt become plain convs; the written config/checkpoint reproduce the
output, and an all-plain result loads into upstream mmseg without
pad_mm."""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.datasets.textures import make_textures_dataset
from pad_mm.models import pad_layers
from pad_mm.apis.inference import load_model, prepare_image
from pad_mm.deploy import freeze_table
from helpers.tools import load_tool

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIG = osp.join(ROOT, 'configs', 'demo', 'pad_deeplabv3plus_r18_textures.py')


def _tool():
    return load_tool(ROOT, 'deployment/freeze_pad.py')


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('tex'))
    make_textures_dataset(root, seed=3, num_train=1, num_val=2, size=32)
    d = osp.join(root, 'images', 'val')
    return [osp.join(d, f) for f in sorted(os.listdir(d))]


def _checkpoint(path, choose, mixed=()):
    """The demo PAD model with priors that always choose option
    ``choose`` (zero input weights, a large bias), except the layers in
    ``mixed`` whose priors depend on the input (random input weights)."""
    torch.manual_seed(0)
    model, _ = load_model(CONFIG)
    for name, layer in pad_layers(model.backbone):
        with torch.no_grad():
            layer.prior.input_weight.zero_()
            layer.prior.input_bias.zero_()
            layer.prior.input_bias[choose] = 10.0
            if name in mixed:
                layer.prior.input_weight.normal_(0, 1.0)
                layer.prior.input_bias.zero_()
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return model


def _run(tmp_path, ckpt, images, out):
    return _tool().main([CONFIG, str(ckpt), '--out-dir', str(out),
                         '--images', *images])


def _rows(result):
    return {r['name']: r for r in result['layers']}


def test_native_dilation_everywhere_gives_plain_upstream_config(
        tmp_path, images):
    model = _checkpoint(tmp_path / 'pad.pth', choose=0)
    res = _run(tmp_path, tmp_path / 'pad.pth', images, tmp_path / 'out')
    rows = _rows(res)
    assert sorted(rows) == ['layer4.0.conv1', 'layer4.0.conv2',
                            'layer4.1.conv1', 'layer4.1.conv2']
    assert all(r['frozen'] and r['dilation'] == 1 for r in rows.values())
    assert all(r['shares'] == [1.0, 0.0, 0.0] for r in rows.values())
    assert res['all_frozen'] and res['kind'] == 'plain upstream'
    assert res['max_abs_diff_frozen_vs_pad'] == 0.0
    text = open(tmp_path / 'out' / 'frozen_config.py').read()
    assert 'PADBackbone' not in text and 'pad_mm' not in text
    assert "type='ResNetV1c'" in text
    table = open(tmp_path / 'out' / 'freeze_table.md').read()
    assert '| layer4.0.conv1 | 1: 1.0000, 2: 0.0000, 4: 0.0000 | yes | 1 |' \
        in table

    # the plain config + checkpoint reproduce the PAD model without pad_mm
    x = prepare_image(model, model.cfg, images[0]).inputs
    with torch.no_grad():
        ref = model(x, mode='tensor')
    torch.save({'x': x, 'ref': ref}, tmp_path / 'io.pt')
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == 'pad_mm' or name.startswith('pad_mm.'):
                    raise ImportError('pad_mm is blocked in this test')
                return None
        sys.meta_path.insert(0, Block())
        import torch
        from mmengine.config import Config
        from mmengine.registry import MODELS, init_default_scope
        cfg = Config.fromfile({str(tmp_path / 'out' / 'frozen_config.py')!r})
        init_default_scope(cfg.default_scope)
        import mmseg.models  # noqa: F401  (registration)
        model = MODELS.build(cfg.model).eval()
        ckpt = torch.load({str(tmp_path / 'out' / 'frozen.pth')!r},
                          weights_only=True)
        model.load_state_dict(ckpt['state_dict'], strict=True)
        io = torch.load({str(tmp_path / 'io.pt')!r}, weights_only=True)
        with torch.no_grad():
            out = model(io['x'], mode='tensor')
        assert 'pad_mm' not in sys.modules
        err = float((out - io['ref']).abs().max())
        print('MAXDIFF', err)
        assert err < 1e-5, err
    """)
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True,
                          text=True, env=dict(os.environ), timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert 'MAXDIFF' in proc.stdout


def test_other_dilation_freezes_where_the_backbone_can_say_it(
        tmp_path, images):
    # priors always choose option 1 (dilation 2): identical output; mmseg's
    # ResNet can give conv1 of layer4.1 dilation 2 (dilations=(1,1,1,2);
    # contract_dilation keeps layer4.0.conv1 at 1), never conv2
    _checkpoint(tmp_path / 'pad.pth', choose=1)
    res = _run(tmp_path, tmp_path / 'pad.pth', images, tmp_path / 'out')
    rows = _rows(res)
    assert all(r['dilation'] == 2 and r['shares'] == [0.0, 1.0, 0.0]
               for r in rows.values())
    assert [n for n, r in rows.items() if r['frozen']] == ['layer4.1.conv1']
    for n in ('layer4.0.conv1', 'layer4.0.conv2', 'layer4.1.conv2'):
        assert 'cannot be expressed' in rows[n]['reason']
    assert res['kind'] == 'PAD'
    assert res['max_abs_diff_frozen_vs_pad'] == 0.0
    assert res['max_abs_diff_written_vs_frozen'] <= 1e-5
    from mmengine.config import Config
    cfg = Config.fromfile(str(tmp_path / 'out' / 'frozen_config.py'))
    bb = cfg.model.backbone
    assert bb.type == 'PADBackbone' and tuple(bb.dilations) == (1, 1, 1, 2)
    assert bb.pad_cfg.layers == ['layer4.0.conv1', 'layer4.0.conv2',
                                 'layer4.1.conv2']


def test_mixed_layer_stays_pad(tmp_path, images):
    _checkpoint(tmp_path / 'pad.pth', choose=0, mixed=('layer4.0.conv2', ))
    res = _run(tmp_path, tmp_path / 'pad.pth', images, tmp_path / 'out')
    rows = _rows(res)
    mixed = rows['layer4.0.conv2']
    assert not mixed['frozen']
    assert mixed['dominant_share'] < 0.99
    assert 'other dilations take' in mixed['reason']
    assert sum(mixed['shares']) == pytest.approx(1.0)
    assert all(rows[n]['frozen'] for n in rows if n != 'layer4.0.conv2')
    assert res['kind'] == 'PAD'
    # the frozen layers chose dilation 1 everywhere: same output as PAD
    assert res['max_abs_diff_frozen_vs_pad'] <= 1e-5
    from mmengine.config import Config
    cfg = Config.fromfile(str(tmp_path / 'out' / 'frozen_config.py'))
    assert cfg.model.backbone.pad_cfg.layers == ['layer4.0.conv2']
    sd = torch.load(tmp_path / 'out' / 'frozen.pth',
                    weights_only=True)['state_dict']
    assert 'backbone.layer4.0.conv2.prior.input_weight' in sd
    assert not any(k.startswith('backbone.layer4.1.conv2.prior') for k in sd)


def test_bad_max_other_is_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _tool().parse_args([CONFIG, CONFIG, '--out-dir', str(tmp_path),
                            '--max-other', '1.5'])
    assert '--max-other must be in [0, 1), got 1.5' in capsys.readouterr().err


def test_table_marks_metrics_of_frozen_layers():
    """A frozen layer has no dilation metric after freezing: the table says
    so instead of printing nan."""
    result = dict(
        layers=[dict(name='layer4.0.conv1', dilations=[1, 2],
                     shares=[1.0, 0.0], frozen=True, dilation=1, reason=''),
                dict(name='layer4.0.conv2', dilations=[1, 2],
                     shares=[0.7, 0.3], frozen=False, dilation=1,
                     reason='other dilations take 0.3000 > max_other=0.01')],
        max_other=0.01, images=2, kind='PAD', max_abs_diff_frozen_vs_pad=0.0,
        metrics_before={'mIoU': 80.0, 'pad/layer4.0.conv1/frac_d1': 1.0,
                        'pad/layer4.0.conv2/frac_d1': 0.7},
        metrics_after={'mIoU': 80.0,
                       'pad/layer4.0.conv1/frac_d1': float('nan'),
                       'pad/layer4.0.conv2/frac_d1': 0.7})
    lines = freeze_table(result).splitlines()
    assert 'mIoU: 80 before, 80 after freezing' in lines
    assert ('pad/layer4.0.conv1/frac_d1: 1 before, - after freezing '
            '(not a PAD layer any more)') in lines
    assert ('pad/layer4.0.conv2/frac_d1: 0.7 before, 0.7 after freezing'
            in lines)
    assert '1 of 2 PAD layers frozen' in '\n'.join(lines)
    assert not any('nan' in line for line in lines)
