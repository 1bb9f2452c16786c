"""pad_mm installed from a NON-editable wheel behaves as an OpenMMLab
codebase: configs, tools and the model index travel in the wheel under
pad_mm/.mim, ``pad_mm::`` inheritance and ``mmengine.hub.get_config`` find
them, ``mim list / search / train`` see pad_mm, and mmpretrain's
``get_model`` builds a PAD model by name.

The wheel is built once per module from a copy of the checkout (``pip wheel
--no-deps --no-build-isolation``), installed with ``pip install --no-deps
--target`` into a temporary folder, and every check runs in a subprocess
whose only PYTHONPATH entry is that folder and whose cwd is an empty
folder (not the repository)."""
import glob
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest
import yaml

pytest.importorskip('mmpretrain')

DEMO = 'configs/demo/pad_deeplabv3plus_r18_textures.py'


def _run(cmd, env, cwd, timeout=600):
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f'{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
        f'{proc.stderr[-6000:]}')
    return proc


def _checkout_files(repo_root):
    """Tracked and untracked-but-not-ignored files of the checkout (what a
    clone holds); falls back to the whole tree without .git."""
    try:
        out = subprocess.run(
            ['git', 'ls-files', '-co', '--exclude-standard'], cwd=repo_root,
            capture_output=True, text=True, check=True).stdout.split('\n')
        return [f for f in out if f and osp.isfile(osp.join(repo_root, f))]
    except (OSError, subprocess.CalledProcessError):
        return None


@pytest.fixture(scope='module')
def installed(repo_root, tmp_path_factory):
    base = tmp_path_factory.mktemp('wheel')
    src, dist, target, cwd = (base / n for n in ('src', 'dist', 'target',
                                                 'cwd'))
    files = _checkout_files(repo_root)
    if files is None:
        shutil.copytree(repo_root, src, ignore=shutil.ignore_patterns(
            '.git', '__pycache__', 'work_dirs', 'data', 'build', '*.egg-info',
            '.mim'))
    else:
        for f in files:
            os.makedirs(src / osp.dirname(f), exist_ok=True)
            shutil.copy2(osp.join(repo_root, f), src / f)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check', '-q']
    _run(pip + ['wheel', '.', '--no-deps', '--no-build-isolation', '-w',
                str(dist)], env, src)
    wheels = glob.glob(str(dist / 'pad_mm-*.whl'))
    assert len(wheels) == 1, wheels
    _run(pip + ['install', '--no-deps', '--target', str(target), wheels[0]],
         env, src)
    cwd.mkdir()
    env = dict(env, PYTHONPATH=str(target), PYTHONWARNINGS='ignore')
    return dict(wheel=wheels[0], target=str(target), cwd=str(cwd), env=env)


def _python(installed, code, timeout=600):
    return _run([sys.executable, '-c', textwrap.dedent(code)],
                installed['env'], installed['cwd'], timeout)


@pytest.mark.skipif(shutil.which('cc') is None and shutil.which('gcc') is
                    None, reason='no C compiler')
def test_installed_wheel_builds_and_checks_the_compiled_helpers(
        installed, tmp_path):
    env = dict(installed['env'], PAD_MM_CACHE_DIR=str(tmp_path))
    proc = _run([sys.executable, '-c', textwrap.dedent('''
        from pad_mm.ops import native
        assert native.available(), native.status()
        print(native.SOURCE)
        ''')], env, installed['cwd'])
    assert proc.stdout.strip().startswith(installed['target'])
    assert len(list(tmp_path.glob('hard_gather-*.so'))) == 1


def test_wheel_carries_configs_tools_and_model_index(installed, repo_root):
    names = set(zipfile.ZipFile(installed['wheel']).namelist())
    for path in (DEMO, 'configs/pad_imagenet/metafile.yml',
                 'tools/train.py', 'tools/test.py',
                 'tools/publish_model.py',
                 'tools/analysis_tools/get_flops.py',
                 'model-index.yml', 'model-index-mmpretrain.yml'):
        assert f'pad_mm/.mim/{path}' in names, path
    # every config of the checkout, nothing compiled
    configs = {p for p in glob.glob('configs/**/*.py', recursive=True,
                                    root_dir=repo_root)}
    assert configs and {f'pad_mm/.mim/{c}' for c in configs} <= names
    assert not any('__pycache__' in n or n.endswith('.pyc') for n in names)
    # the C source of the hard path's helpers, compiled on first use
    assert 'pad_mm/ops/csrc/hard_gather.c' in names
    # the installed copy is real files, not links into the checkout
    mim = osp.join(installed['target'], 'pad_mm', '.mim')
    assert not osp.islink(osp.join(mim, 'configs'))
    assert osp.isfile(osp.join(mim, DEMO))


def test_inheritance_hub_and_mmpretrain_get_model(installed):
    out = _python(installed, '''
        import json, os, sys
        with open('child.py', 'w') as f:
            f.write("_base_ = "
                    "['pad_mm::demo/pad_deeplabv3plus_r18_textures.py']\\n"
                    "max_iters = 3\\n")
        import pad_mm.cls, pad_mm.seg
        from mmengine.config import Config
        from mmengine.hub import get_config
        from mmpretrain import get_model, list_models
        from pad_mm.models import PADConv2d
        child = Config.fromfile('child.py')
        hub = get_config('pad_mm::demo/pad_deeplabv3plus_r18_textures.py')
        model = get_model('pad_resnet50_8xb24-120e_in1k')
        pads = [n for n, m in model.named_modules()
                if isinstance(m, PADConv2d) and m.adaptive]
        print(json.dumps(dict(
            pad_mm=pad_mm.__file__, cwd=os.getcwd(),
            child_backbone=child.model.backbone.type,
            child_layers=child.model.backbone.pad_cfg.layers,
            child_max_iters=child.max_iters,
            hub_file=hub.filename, hub_backbone=hub.model.backbone.type,
            model=type(model).__name__, pad_layers=len(pads),
            first_pad=pads[0] if pads else None,
            listed=list_models('*pad*'))))
        ''')
    res = __import__('json').loads(out.stdout.strip().splitlines()[-1])
    target = installed['target']
    assert res['pad_mm'].startswith(target)
    assert res['cwd'] == installed['cwd']
    assert res['child_backbone'] == 'PADBackbone'
    assert res['child_layers'] == ['layer4.*.conv1', 'layer4.*.conv2']
    assert res['child_max_iters'] == 3
    assert res['hub_file'] == osp.join(target, 'pad_mm', '.mim', DEMO)
    assert res['hub_backbone'] == 'PADBackbone'
    assert res['model'] == 'ImageClassifier'
    assert res['pad_layers'] > 0 and res['first_pad'].startswith('backbone')
    # exactly the PAD models of the classification metafiles
    meta_dir = osp.join(target, 'pad_mm', '.mim', 'configs')
    expected = set()
    for folder in ('pad_imagenet', 'pad_finegrained', 'demo_cls'):
        with open(osp.join(meta_dir, folder, 'metafile.yml')) as f:
            expected |= {m['Name'] for m in yaml.safe_load(f)['Models']
                         if 'pad' in m['Name']}
    assert set(res['listed']) == expected
    assert 'pad_resnet50_8xb24-120e_in1k' in expected


def test_mim_list_and_search(installed):
    pytest.importorskip('mim')
    listed = _run([sys.executable, '-m', 'mim', 'list'], installed['env'],
                  installed['cwd']).stdout
    assert re.search(r'^pad[-_]mm\s+0\.\d+\.\d+', listed, re.M), listed
    found = _run([sys.executable, '-m', 'mim', 'search', 'pad_mm'],
                 installed['env'], installed['cwd']).stdout
    ids = set(re.findall(r'config id: (\S+)', found))
    assert {'pad_deeplabv3plus_r18_textures', 'pad_resnet50_8xb24-120e_in1k',
            'pad_fcn8s_vgg16_1xb1-300k_voc12aug'} <= ids
    # the printed table cuts long values to the terminal's width; the
    # config paths are checked in mim's JSON dump of the same search
    dump = osp.join(installed['cwd'], 'search.json')
    _run([sys.executable, '-m', 'mim', 'search', 'pad_mm', '--json', dump],
         installed['env'], installed['cwd'])
    with open(dump) as f:
        configs = json.load(f)['config']
    assert configs['pad_deeplabv3plus_r18_textures'] == \
        'configs/demo/pad_deeplabv3plus_r18_textures.py'
    assert configs['pad_resnet18_textures_cls'] == \
        'configs/demo_cls/pad_resnet18_textures_cls.py'
    for cid, path in configs.items():
        assert osp.isfile(osp.join(installed['target'], 'pad_mm', '.mim',
                                   path)), (cid, path)


def test_mim_train_two_iterations(installed):
    """``mim train pad_mm configs/demo/...`` finds the config and
    tools/train.py inside the installed package and trains (2 iterations
    on a tiny generated set, data under the clean cwd); the demo's dilation
    statistics and map hooks draw their pictures at the validation."""
    pytest.importorskip('mim')
    ds = ('train_dataloader.dataset', 'val_dataloader.dataset',
          'test_dataloader.dataset')
    opts = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'train_dataloader.batch_size=2',
            'model.data_preprocessor.size=(32,32)',
            'default_hooks.logger.interval=1']
    for d in ds:
        opts += [f'{d}.data_root=tiny', f'{d}.generate.num_train=4',
                 f'{d}.generate.num_val=2', f'{d}.generate.size=32']
    proc = _run([sys.executable, '-m', 'mim', 'train', 'pad_mm', DEMO,
                 '--work-dir', 'w', '--cfg-options'] + opts,
                installed['env'], installed['cwd'])
    mim = osp.join(installed['target'], 'pad_mm', '.mim')
    assert osp.join(mim, 'tools', 'train.py') in proc.stdout
    assert osp.join(mim, DEMO) in proc.stdout
    work = osp.join(installed['cwd'], 'w')
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    logs = glob.glob(osp.join(work, '*', '*.log'))
    assert logs and 'Iter(train) [2/2]' in open(logs[0]).read()
    assert osp.isdir(osp.join(installed['cwd'], 'tiny', 'images', 'train'))
    pictures = {osp.basename(p) for p in glob.glob(
        osp.join(work, '*', 'vis_data', 'vis_image', '*.png'))}
    assert 'pad_dilation_map_0_2.png' in pictures
    assert 'pad_dilation_map_1_2.png' in pictures
    assert any(p.startswith('pad_dilation_histogram') for p in pictures)


SEG_CHILD = '''_base_ = ['pad_mm::demo/pad_deeplabv3plus_r18_textures.py']
gen = dict(seed=0, num_train=4, num_val=2, size=32)
train_dataloader = dict(batch_size=2, dataset=dict(data_root='tiny_seg',
                                                   generate=gen))
val_dataloader = dict(dataset=dict(data_root='tiny_seg', generate=gen))
test_dataloader = val_dataloader
model = dict(data_preprocessor=dict(size=(32, 32)))
train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
'''
CLS_CHILD = '''_base_ = ['pad_mm::pad_imagenet/pad_resnet50_8xb24-120e_in1k.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=72, edge='short'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='PackInputs'),
]
loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = dict(**loader, dataset=dict(data_root='tiny_in1k',
                                               pipeline=train_pipeline))
val_dataloader = dict(**loader, dataset=dict(data_root='tiny_in1k',
                                             pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1))
'''
# the checkpoint 2 iterations write, and the log line of the 2nd
CHILDREN = dict(seg=('child_seg.py', SEG_CHILD, 'iter_2.pth',
                     'Iter(train) [2/2]', 'mmseg'),
                cls=('child_cls.py', CLS_CHILD, 'epoch_1.pth', '[2/2]',
                     'mmpretrain'))


def _upstream_train(package):
    mod = __import__(package)
    script = osp.join(osp.dirname(mod.__file__), '.mim', 'tools',
                      'train.py')
    if not osp.isfile(script):
        pytest.skip(f'this {package} install does not ship tools/train.py')
    return script


@pytest.fixture(scope='module')
def children(installed):
    """The two child configs of pad_mm:: bases, and their data, in the
    clean cwd."""
    from helpers.cls_data import make_imagenet
    make_imagenet(osp.join(installed['cwd'], 'tiny_in1k'))
    for name, text, *_ in CHILDREN.values():
        with open(osp.join(installed['cwd'], name), 'w') as f:
            f.write(text)
    return installed


@pytest.mark.parametrize('task', ['seg', 'cls'])
@pytest.mark.parametrize('how', ['tools', 'mim', 'upstream'])
def test_pad_mm_child_config_trains(children, task, how):
    """A config of one's own on a pad_mm:: base (mmengine stamps
    _scope_='pad_mm' on what it inherits) trains 2 iterations through
    pad_mm's tools/train.py, ``mim train pad_mm`` and the task codebase's
    own tools/train.py (run through ``python -m pad_mm.utils.launch``, see
    docs/advanced/registry.md)."""
    name, _, ckpt, line, package = CHILDREN[task]
    work = f'w_{task}_{how}'
    mim = osp.join(children['target'], 'pad_mm', '.mim')
    if how == 'tools':
        cmd = [sys.executable, osp.join(mim, 'tools', 'train.py'), name]
    elif how == 'mim':
        pytest.importorskip('mim')
        cmd = [sys.executable, '-m', 'mim', 'train', 'pad_mm', name]
    else:
        cmd = [sys.executable, '-m', 'pad_mm.utils.launch',
               _upstream_train(package), name]
    _run(cmd + ['--work-dir', work], children['env'], children['cwd'])
    work = osp.join(children['cwd'], work)
    assert osp.isfile(osp.join(work, ckpt))
    logs = glob.glob(osp.join(work, '*', '*.log'))
    assert logs and line in open(logs[0]).read()
    state = __import__('torch').load(osp.join(work, ckpt),
                                     weights_only=False)['state_dict']
    assert any('.prior.input_weight' in k for k in state)  # a PAD model
    # the inherited PAD hook ran in pad_mm's scope: tau left 1.0
    taus = [float(v) for k, v in state.items() if k.endswith('pad_tau')]
    assert taus and all(t < 1.0 for t in taus), taus


@pytest.mark.parametrize('task', ['seg', 'cls'])
def test_upstream_train_without_launch_says_why(children, task):
    """Without the launcher the upstream script stops where mmengine
    resolves the pad_mm:: base: MODULE2PACKAGE is a fixed table and a
    config's custom_imports run after its _base_ (docs/advanced/registry.md)."""
    name, *_, package = CHILDREN[task]
    proc = subprocess.run(
        [sys.executable, _upstream_train(package), name, '--work-dir',
         f'w_{task}_plain'], env=children['env'], cwd=children['cwd'],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert 'mmengine does not support to load pad_mm config' in proc.stderr
