"""tools/publish_model.py: a training checkpoint becomes weights + plain
meta under a hashed name, loadable with torch.load(weights_only=True) and,
in a fresh process that never imported pad_mm, by MMSegInferencer and
mmseg's init_model. Also tools/test.py --show-interval and
visualize_dilation.py on folders / globs, which need a trained checkpoint
too."""
import glob
import hashlib
import json
import os
import os.path as osp
import pickle
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.apis.validate import PADConfigError, PADConfigFileError

from helpers.tools import load_tool

DEMO = 'configs/demo/pad_deeplabv3plus_r18_textures.py'


def tiny_config(repo_root, tmp, max_iters=2) -> str:
    """The demo shrunk: slim ResNet-18, 32x32 images, 4 train / 2 val."""
    cfg = Config.fromfile(osp.join(repo_root, DEMO))
    gen = dict(seed=1, num_train=4, num_val=2, size=32)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(tmp / 'data')
        cfg[loader].dataset.generate = gen
    cfg.train_dataloader.batch_size = 2
    cfg.model.data_preprocessor.size = (32, 32)
    cfg.model.backbone.update(stem_channels=8, base_channels=8)
    cfg.model.decode_head.update(in_channels=64, channels=16,
                                 c1_in_channels=8, c1_channels=8)
    cfg.model.auxiliary_head.update(in_channels=32, channels=16)
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters + 1
    cfg.param_scheduler[0].end = max_iters
    cfg.default_hooks.checkpoint.interval = max_iters
    cfg.default_hooks.logger.interval = 1
    cfg.visualizer.name = f'vis_publish_{tmp.name}'
    cfg.experiment_name = f'publish_{tmp.name}'
    path = tmp / 'tiny_pad.py'
    cfg.dump(str(path))
    return str(path)


@pytest.fixture(scope='module')
def trained(repo_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('publish')
    cfg = tiny_config(repo_root, tmp)
    train = load_tool(repo_root, 'train.py')
    train.main([cfg, '--work-dir', str(tmp / 'work')])
    ckpt = str(tmp / 'work' / 'iter_2.pth')
    assert osp.isfile(ckpt)
    publish = load_tool(repo_root, 'publish_model.py')
    result = publish.main([ckpt, str(tmp / 'pub' / 'pad_tiny.pth')])
    return dict(tmp=tmp, cfg=cfg, ckpt=ckpt, result=result,
                published=result['path'], tool=publish)


def test_published_file_is_hashed_and_plain(trained):
    path = trained['published']
    m = re.fullmatch(r'pad_tiny-([0-9a-f]{8})\.pth', osp.basename(path))
    assert m, path
    with open(path, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert digest.startswith(m.group(1))
    assert trained['result']['sha256'] == digest
    assert trained['result']['max_abs_diff'] == 0.0
    # the training checkpoint needs weights_only=False; the published not
    with pytest.raises(pickle.UnpicklingError):
        torch.load(trained['ckpt'], map_location='cpu', weights_only=True)
    pub = torch.load(path, map_location='cpu', weights_only=True)
    assert set(pub) == {'meta', 'state_dict'}
    src = torch.load(trained['ckpt'], map_location='cpu', weights_only=False)
    assert pub['state_dict'].keys() == src['state_dict'].keys()
    for k, v in src['state_dict'].items():
        assert torch.equal(pub['state_dict'][k], v), k
    meta = pub['meta']
    assert set(meta) == {'cfg', 'dataset_meta', 'pad', 'pad_mm_version',
                         'mmengine_version', 'torch_version', 'source'}
    assert meta['pad_mm_version'] == pad_mm.__version__
    assert meta['source'] == dict(file='iter_2.pth', epoch=0, iter=2)
    from pad_mm.datasets import PADTexturesDataset
    assert meta['dataset_meta']['classes'] == list(
        PADTexturesDataset.METAINFO['classes'])
    layers = meta['pad']['layers']
    assert sorted(layers) == [f'backbone.layer4.{b}.conv{c}'
                              for b in (0, 1) for c in (1, 2)]
    for info in layers.values():
        assert info['dilations'] == [1, 2, 4]
        assert info['eval_mode'] == 'hard'
        assert info['aggregation'] == 'markov'
    # tau of the last of 2 iterations under exp 1.0 -> 0.2
    assert meta['pad']['tau'] == pytest.approx(0.2**0.5)
    cfg = Config.fromstring(meta['cfg'], file_format='.py')
    assert cfg.custom_imports == dict(imports=['pad_mm'],
                                      allow_failed_imports=False)
    assert cfg.model.backbone.type == 'PADBackbone'
    assert cfg.load_from is None and cfg.resume is False


def test_fresh_process_without_pad_mm(trained, repo_root):
    """MMSegInferencer(model=None, weights=...) and init_model build the
    PAD model from the stored config alone; outputs match."""
    tmp = trained['tmp']
    image = sorted(glob.glob(str(tmp / 'data' / 'images' / 'val' /
                                 '*.png')))[0]
    code = textwrap.dedent(f'''
        import json, sys
        import numpy as np, torch
        assert 'pad_mm' not in sys.modules
        from mmengine.config import Config
        from mmseg.apis import MMSegInferencer, init_model
        assert 'pad_mm' not in sys.modules
        path = {trained['published']!r}
        inferencer = MMSegInferencer(model=None, weights=path, device='cpu')
        pred = inferencer({image!r})['predictions']
        import pad_mm
        from pad_mm.models import PADConv2d
        meta = torch.load(path, weights_only=True)['meta']
        model = init_model(Config.fromstring(meta['cfg'], '.py'), path,
                           device='cpu')
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(1, 3, 32, 32, generator=gen)
        with torch.no_grad():
            out = model(x, mode='tensor')
        torch.save(out, {str(tmp / 'fresh_out.pt')!r})
        print(json.dumps(dict(
            pad_mm=pad_mm.__file__, pred_shape=list(pred.shape),
            classes=list(model.dataset_meta['classes']),
            inferencer_pad=sum(isinstance(m, PADConv2d) and m.adaptive
                               for m in inferencer.model.modules()),
            model_pad=sum(isinstance(m, PADConv2d) and m.adaptive
                          for m in model.modules()))))
        ''')
    env = dict(os.environ, PYTHONPATH=repo_root, PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, '-c', code], env=env,
                          cwd=str(tmp), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res['pad_mm'].startswith(repo_root)
    assert res['pred_shape'] == [32, 32]
    assert res['inferencer_pad'] == res['model_pad'] == 4
    from pad_mm.datasets import PADTexturesDataset
    assert res['classes'] == list(PADTexturesDataset.METAINFO['classes'])
    # the same output as the model built here from the training checkpoint
    from pad_mm.apis import load_model
    model, _ = load_model(trained['cfg'], trained['ckpt'])
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x, mode='tensor')
    torch.testing.assert_close(torch.load(tmp / 'fresh_out.pt'), ref,
                               rtol=1e-6, atol=1e-6)


def test_publish_refuses_a_model_that_does_not_reproduce(trained,
                                                         monkeypatch):
    tool = trained['tool']
    real = tool._model_output
    calls = []

    def perturbed(cfg, state_dict, shape):
        out, model = real(cfg, state_dict, shape)
        calls.append(1)
        return (out + 1e-3 if len(calls) == 2 else out), model

    monkeypatch.setattr(tool, '_model_output', perturbed)
    out_dir = trained['tmp'] / 'bad'
    with pytest.raises(RuntimeError, match='differs'):
        tool.publish(trained['ckpt'], str(out_dir / 'x.pth'))
    assert len(calls) == 2
    assert not glob.glob(str(out_dir / '*'))  # nothing left behind


def test_publish_bad_arguments(trained):
    tool = trained['tool']
    with pytest.raises(PADConfigFileError, match='checkpoint'):
        tool.publish(str(trained['tmp'] / 'nope.pth'), 'x.pth')
    with pytest.raises(PADConfigError, match='ending in .pth'):
        tool.publish(trained['ckpt'], str(trained['tmp'] / 'x.ckpt'))


def test_test_tool_show_interval(trained, repo_root):
    """--show-interval 2 on 2 test images draws the 2nd only (mmseg's
    every-N-th rule); the published checkpoint works with tools/test.py."""
    test = load_tool(repo_root, 'test.py')
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        test.parse_args(['--help'])
    text = ' '.join(buf.getvalue().split())
    assert 'every 50th image' in text and '--show-interval' in text
    show = trained['tmp'] / 'show'
    # a visualizer of its own (mmengine keeps one instance per name per
    # process; the training run's would keep its save_dir)
    metrics = test.main([trained['cfg'], trained['published'], '--work-dir',
                         str(trained['tmp'] / 'test_work'), '--show-dir',
                         str(show), '--show-interval', '2', '--cfg-options',
                         'visualizer.name=vis_show_interval'])
    assert 'mIoU' in metrics
    drawn = [osp.basename(p) for p in glob.glob(
        str(show / '**' / 'test_*.png'), recursive=True)]
    assert drawn == ['test_000001.png_0.png'], drawn
    with pytest.raises(PADConfigError, match='--show-interval'):
        test.main([trained['cfg'], trained['published'], '--show-dir',
                   str(show), '--show-interval', '0'])


def test_visualize_dilation_folder_and_glob(trained, repo_root):
    tool = load_tool(repo_root, 'analysis_tools/visualize_dilation.py')
    val = trained['tmp'] / 'data' / 'images' / 'val'
    out = trained['tmp'] / 'maps'
    res = tool.main([trained['cfg'], trained['published'], str(val),
                     '--out-dir', str(out / 'folder')])
    assert [osp.basename(r['image']) for r in res['images']] == [
        '000000.png', '000001.png']
    for stem in ('000000', '000001'):
        assert (out / 'folder' / f'{stem}_dilation.png').is_file()
        data = json.loads((out / 'folder' /
                           f'{stem}_dilation.json').read_text())
        assert len(data['layers']) == 4
    one = tool.main([trained['cfg'], trained['published'],
                     str(val / '*1.png'), '--out-dir', str(out / 'glob')])
    assert osp.basename(one['image']) == '000001.png'  # one image: its dict
    assert sorted(os.listdir(out / 'glob'))[0].startswith('000001_')
    with pytest.raises(FileNotFoundError, match='no image there'):
        tool.main([trained['cfg'], trained['published'],
                   str(val / '*.jpg'), '--out-dir', str(out / 'none')])
