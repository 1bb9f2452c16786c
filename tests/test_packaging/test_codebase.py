"""pad_mm as a codebase, in the checkout: metafiles and model indexes
cover every config, setup.py's .mim extension links or copies, the
registration helpers of pad_mm.utils, LICENSE / README."""
import glob
import importlib.util
import os
import os.path as osp
import shutil
import sys

import pytest
import yaml

import pad_mm.cls  # noqa: F401  (registers pad_mm for mmpretrain)
import pad_mm.seg  # noqa: F401  (and for mmseg)
from pad_mm import utils

CLS_FOLDERS = ('pad_imagenet', 'pad_finegrained', 'demo_cls')


def _load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def _configs(repo_root):
    return sorted(p for p in glob.glob('configs/**/*.py', recursive=True,
                                       root_dir=repo_root)
                  if '/_base_/' not in p)


def test_metafiles_cover_every_config_once(repo_root):
    index = _load(osp.join(repo_root, 'model-index.yml'))
    metafiles = sorted(glob.glob('configs/*/metafile.yml',
                                 root_dir=repo_root))
    assert sorted(index['Import']) == metafiles
    seen = {}
    for meta in metafiles:
        data = _load(osp.join(repo_root, meta))
        collections = {c['Name'] for c in data['Collections']}
        for c in data['Collections']:
            assert c['Paper']['URL'].startswith('https://openreview.net/')
            assert 'Pixel-wise Adaptive Dilation' in c['Paper']['Title']
        for m in data['Models']:
            assert m['In Collection'] in collections
            cfg = m['Config']
            assert osp.isfile(osp.join(repo_root, cfg)), cfg
            # model name = config file name (what get_model / mim use)
            assert m['Name'] == osp.splitext(osp.basename(cfg))[0]
            assert cfg not in seen, f'{cfg} in {meta} and {seen.get(cfg)}'
            seen[cfg] = meta
            # no number that was not measured, no weights not published
            for result in m.get('Results') or []:
                assert result.get('Metrics'), m['Name']
            if 'Weights' in m:
                assert m['Weights'].startswith('https://'), m['Name']
    assert sorted(seen) == _configs(repo_root)
    names = [osp.splitext(osp.basename(c))[0] for c in seen]
    assert len(set(names)) == len(names)  # mim train finds by file name


def test_mmpretrain_index_holds_the_classification_folders(repo_root):
    index = _load(osp.join(repo_root, 'model-index-mmpretrain.yml'))
    assert sorted(index['Import']) == sorted(
        f'configs/{f}/metafile.yml' for f in CLS_FOLDERS)
    for meta in index['Import']:
        for m in _load(osp.join(repo_root, meta))['Models']:
            from mmengine.config import Config
            if m['Name'].startswith('pad_resnet50'):
                cfg = Config.fromfile(osp.join(repo_root, m['Config']))
                assert cfg.default_scope == 'mmpretrain'


def test_import_registers_module2package_and_model_hub(repo_root):
    from mmengine.config.utils import MODULE2PACKAGE
    from mmpretrain import list_models
    from mmpretrain.apis import ModelHub
    assert MODULE2PACKAGE['pad_mm'] == 'pad_mm'
    assert utils.mim_root() in (repo_root, osp.join(
        osp.dirname(pad_mm.__file__), '.mim'))
    names = utils.register_model_hub()  # idempotent: no conflict error
    assert names == utils.register_model_hub()
    assert 'pad_resnet50_8xb24-120e_in1k' in names
    assert set(list_models('*pad*')) == {n for n in names if 'pad' in n}
    meta = ModelHub.get('pad_resnet50_8xb24-120e_in1k')
    assert meta.config.model.backbone.type == 'PADBackbone'
    assert meta.config.filename.endswith(
        'configs/pad_imagenet/pad_resnet50_8xb24-120e_in1k.py')


def test_register_all_modules_sets_scope():
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS as CLS_MODELS
    from mmseg.registry import DATASETS, MODELS
    utils.register_all_modules(init_default_scope=True, scope='mmpretrain')
    assert DefaultScope.get_current_instance().scope_name == 'mmpretrain'
    utils.register_all_modules()
    assert DefaultScope.get_current_instance().scope_name == 'mmseg'
    assert MODELS.get('PADBackbone') is not None
    assert MODELS.get('EncoderDecoder') is not None
    assert DATASETS.get('PADTexturesDataset') is not None
    assert CLS_MODELS.get('ImageClassifier') is not None
    with pytest.raises(ValueError, match="scope must be one of"):
        utils.register_all_modules(scope='mmdet')


def _setup_module(repo_root, tmp_path):
    """setup.py and the .mim sources copied to tmp_path, setup.py loaded as
    a module (its __main__ block does not run)."""
    for name in ('configs/demo', 'tools/analysis_tools'):
        shutil.copytree(osp.join(repo_root, name), tmp_path / name)
    for name in ('setup.py', 'model-index.yml', 'model-index-mmpretrain.yml',
                 'tools/train.py'):
        shutil.copy2(osp.join(repo_root, name), tmp_path / name)
    (tmp_path / 'pad_mm').mkdir()
    spec = importlib.util.spec_from_file_location(
        'pad_setup', tmp_path / 'setup.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('command,link', [('develop', True),
                                          ('editable_wheel', True),
                                          ('bdist_wheel', False),
                                          ('sdist', False)])
def test_setup_links_or_copies_mim_files(repo_root, tmp_path, monkeypatch,
                                         command, link):
    setup = _setup_module(repo_root, tmp_path)
    monkeypatch.setattr(sys, 'argv', ['setup.py', command])
    setup.add_mim_extension()
    mim = tmp_path / 'pad_mm' / '.mim'
    for name in ('configs', 'tools', 'model-index.yml',
                 'model-index-mmpretrain.yml'):
        assert osp.islink(mim / name) is link, name
        assert osp.exists(mim / name)
    assert (mim / 'configs' / 'demo' /
            'pad_deeplabv3plus_r18_textures.py').is_file()
    if link:  # relative links into the checkout
        assert os.readlink(mim / 'configs') == osp.join('..', '..',
                                                        'configs')
    # a second run replaces what the first left (links <-> copies)
    monkeypatch.setattr(sys, 'argv', ['setup.py',
                                      'sdist' if link else 'develop'])
    setup.add_mim_extension()
    assert osp.islink(mim / 'configs') is not link


def test_setup_other_commands_leave_mim_alone(repo_root, tmp_path,
                                              monkeypatch):
    setup = _setup_module(repo_root, tmp_path)
    monkeypatch.setattr(sys, 'argv', ['setup.py', 'egg_info'])
    setup.add_mim_extension()
    assert not (tmp_path / 'pad_mm' / '.mim').exists()


def test_license_and_citation(repo_root):
    text = open(osp.join(repo_root, 'LICENSE')).read()
    assert text.lstrip().startswith('Apache License')
    assert 'Version 2.0, January 2004' in text
    assert 'END OF TERMS AND CONDITIONS' in text
    assert len(text.splitlines()) > 190  # the full text, not a stub
    assert "license='Apache-2.0'" in open(osp.join(repo_root,
                                                   'setup.py')).read()
    readme = open(osp.join(repo_root, 'README.md')).read()
    assert '@inproceedings{' in readme
    assert 'Learning Dynamic Receptive Fields' in readme
    assert 'https://openreview.net/forum?id=rye4lT4tvB' in readme


def test_docs_name_where_mmseg_tools_fail(repo_root):
    guide = open(osp.join(repo_root, 'docs', 'user_guides',
                          'train_test.md')).read()
    # where mmseg's own tools fail, and the replacement
    for needle in ('mmseg#3241', 'mmseg#3405', '200',
                   'tools/analysis_tools/get_flops.py',
                   'tools/analysis_tools/benchmark.py',
                   'tools/publish_model.py',
                   'tools/deployment/pytorch2onnx.py'):
        assert needle in guide, needle
