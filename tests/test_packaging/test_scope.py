"""pad_mm's registry scope (docs/advanced/registry.md): what each import loads, the
lookup rule of the ``pad_mm`` registries across mmseg and mmpretrain, the
plain names ``pad_mm.seg`` / ``pad_mm.cls`` publish, ``custom_imports``,
and the pre-flight check on dicts that carry ``_scope_``."""
import os
import subprocess
import sys
import textwrap

import pytest

OPENMMLAB = ('mmengine', 'mmcv', 'mmseg', 'mmpretrain')
LOADED = ('loaded = sorted({m.split(".")[0] for m, v in sys.modules.items() '
          f'if m.split(".")[0] in {OPENMMLAB!r} and v is not None}})\n')


def _python(repo_root, code, env=None, check=True, loaded=False):
    """Run ``code`` in a fresh interpreter with the checkout on the path;
    ``loaded``: then print the OpenMMLab packages it loaded."""
    run_env = {k: v for k, v in os.environ.items()
               if k not in ('PAD_MM_NO_PATCH', 'PYTHONPATH')}
    run_env.update(PYTHONPATH=repo_root, **(env or {}))
    code = textwrap.dedent(code) + (LOADED + 'print(loaded)\n' if loaded
                                    else '')
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True, text=True, env=run_env,
                         cwd=repo_root, timeout=300)
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_ops_loads_no_openmmlab_even_where_installed(repo_root):
    out = _python(repo_root, 'import sys\nimport pad_mm.ops, pad_mm\n',
                  loaded=True)
    assert out.stdout.strip() == '[]'


def test_registry_needs_mmengine_and_layers_no_task_codebase(repo_root):
    out = _python(repo_root, 'import sys\nimport pad_mm.registry\n',
                  loaded=True)
    assert out.stdout.strip() == "['mmengine']"
    out = _python(repo_root, '''
        import sys
        sys.modules['mmseg'] = None  # hidden: an import of it fails
        sys.modules['mmpretrain'] = None
        from pad_mm.models.layers import PADConv2d
        from pad_mm.models import convert_to_pad
        from pad_mm.registry import MODELS
        assert MODELS.get('PADConv') is PADConv2d
        ''', loaded=True)
    assert out.stdout.strip() == "['mmcv', 'mmengine']"


def test_import_pad_mm_registers_and_patches_nothing(repo_root):
    out = _python(repo_root, '''
        import mmengine.dist.utils as du
        import mmengine.runner.checkpoint as ckpt
        import torch
        from mmengine.config.utils import MODULE2PACKAGE
        from mmengine.hooks import CheckpointHook
        from mmengine.registry import HOOKS, MODELS
        from mmengine.runner import Runner
        before = (ckpt.torch, ckpt.load_state_dict, ckpt.save_checkpoint,
                  du._init_dist_pytorch, Runner.load_or_resume,
                  CheckpointHook._save_checkpoint_with_step)
        import pad_mm, pad_mm.models, pad_mm.engine, pad_mm.registry
        after = (ckpt.torch, ckpt.load_state_dict, ckpt.save_checkpoint,
                 du._init_dist_pytorch, Runner.load_or_resume,
                 CheckpointHook._save_checkpoint_with_step)
        assert all(a is b for a, b in zip(before, after)), after
        assert ckpt.torch is torch
        assert 'pad_mm' not in MODULE2PACKAGE
        assert 'PADConv' not in MODELS.module_dict
        assert 'PADTauHook' not in HOOKS.module_dict
        print('unchanged')
        ''')
    assert out.stdout.strip().endswith('unchanged')


def test_task_scope_picks_the_codebase_of_a_shared_name():
    """ResNetV1c, CrossEntropyLoss and VGG exist in mmseg and mmpretrain
    (VGG also in pad_mm, for segmentation): a pad_mm lookup takes the
    task's."""
    pytest.importorskip('mmpretrain')
    from mmengine.registry import DefaultScope, init_default_scope
    from mmpretrain.registry import MODELS as CLS
    from mmseg.registry import MODELS as SEG

    from pad_mm.models.backbones import VGG
    from pad_mm.registry import MODELS, task_in_effect
    init_default_scope('mmseg')
    assert task_in_effect() == 'seg'
    assert MODELS.get('ResNetV1c') is SEG.get('ResNetV1c')
    assert MODELS.get('CrossEntropyLoss') is SEG.get('CrossEntropyLoss')
    assert MODELS.get('VGG') is VGG
    assert MODELS.get('pad_mm.VGG') is VGG
    assert MODELS.get('EncoderDecoder') is SEG.get('EncoderDecoder')
    # a _scope_='pad_mm' build inside the task scope (what a child of a
    # pad_mm:: base does): the task is still segmentation
    with DefaultScope.overwrite_default_scope('pad_mm'):
        assert task_in_effect() == 'seg'
        assert MODELS.get('ResNetV1c') is SEG.get('ResNetV1c')
    net = SEG.build(dict(type='ResNetV1c', depth=18, _scope_='pad_mm'))
    assert type(net) is SEG.get('ResNetV1c')
    init_default_scope('mmpretrain')
    assert task_in_effect() == 'cls'
    assert CLS.get('ResNetV1c') is not SEG.get('ResNetV1c')
    assert MODELS.get('ResNetV1c') is CLS.get('ResNetV1c')
    assert MODELS.get('CrossEntropyLoss') is CLS.get('CrossEntropyLoss')
    assert MODELS.get('VGG') is CLS.get('VGG') is not VGG
    assert MODELS.get('pad_mm.VGG') is None  # pad_mm's VGG is seg only
    net = CLS.build(dict(type='ResNetV1c', depth=18, _scope_='pad_mm'))
    assert type(net) is CLS.get('ResNetV1c')
    assert MODELS.get('PADConv') is not None  # task independent


def test_no_task_scope_resolves_only_unambiguous_names(repo_root):
    pytest.importorskip('mmpretrain')
    out = _python(repo_root, '''
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS as SEG
        from pad_mm.registry import MODELS, task_in_effect
        assert task_in_effect() is None
        assert MODELS.get('EncoderDecoder') is SEG.get('EncoderDecoder')
        try:
            MODELS.get('ResNetV1c')
        except KeyError as e:
            print('ERR', e)
        init_default_scope('mmengine')  # another codebase's scope
        assert task_in_effect() is None
        ''')
    err = out.stdout.strip()
    assert err.startswith('ERR')
    assert "'ResNetV1c' names different classes in mmseg and mmpretrain" \
        in err
    assert "default_scope" in err and "'mmseg.ResNetV1c'" in err


def test_seg_and_cls_publish_plain_names_where_they_belong(repo_root):
    pytest.importorskip('mmpretrain')
    out = _python(repo_root, '''
        import pad_mm.seg
        from mmengine.config.utils import MODULE2PACKAGE
        from mmengine.registry import HOOKS, MODELS
        from mmpretrain.registry import MODELS as CLS
        from mmseg.registry import DATASETS, MODELS as SEG
        from pad_mm.models import PADConv2d
        from pad_mm.models.backbones import VGG
        assert MODULE2PACKAGE['pad_mm'] == 'pad_mm'
        assert MODELS.module_dict['PADConv'] is PADConv2d  # root
        assert 'PADTauHook' in HOOKS.module_dict
        assert SEG.module_dict['VGG'] is VGG  # segmentation only
        assert 'PADTexturesDataset' in DATASETS.module_dict
        assert CLS.get('VGG') is not VGG  # mmpretrain's own
        import pad_mm.cls
        assert CLS.get('VGG') is not VGG
        assert 'VGG' not in MODELS.module_dict
        from mmpretrain import list_models
        assert 'pad_resnet50_8xb24-120e_in1k' in list_models('*pad*')
        print('ok')
        ''')
    assert out.stdout.strip().endswith('ok')


def test_custom_imports_pad_mm_registers_installed_tasks(repo_root,
                                                         tmp_path):
    """A config's custom_imports=['pad_mm'] (pad_mm's configs, older user
    configs) registers pad_mm as it did before the scope; a plain import
    of pad_mm does not."""
    pytest.importorskip('mmpretrain')
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("custom_imports = dict(imports=['pad_mm'], "
                   "allow_failed_imports=False)\ndefault_scope = 'mmseg'\n")
    out = _python(repo_root, f'''
        from mmengine.config import Config
        from mmengine.registry import MODELS
        from mmseg.registry import MODELS as SEG
        assert SEG.get('PADBackbone') is None
        Config.fromfile({str(cfg)!r})
        assert SEG.get('PADBackbone') is not None
        assert SEG.get('VGG') is not None
        import mmengine.runner.checkpoint as ckpt, torch
        print('patched', ckpt.torch is not torch)
        ''')
    assert out.stdout.strip().endswith('patched True')


def test_preflight_resolves_scoped_dicts(tmp_path):
    """Dicts that carry _scope_ (stamped by mmengine on what a config
    inherits from a pad_mm:: base) are checked in that scope: on the old
    code the hook check failed with "unknown argument '_scope_'"."""
    from mmengine.config import Config

    import pad_mm.seg  # noqa: F401
    from pad_mm.apis.validate import PADConfigError, validate_config
    cfg = Config(dict(
        default_scope='mmseg',
        model=dict(type='EncoderDecoder'),
        custom_hooks=[
            dict(type='PADTauHook', tau_start=1.0, tau_end=0.5,
                 _scope_='pad_mm'),
            dict(type='PADDilationStatsHook', _scope_='pad_mm'),
        ],
        optim_wrapper=dict(type='OptimWrapper', _scope_='pad_mm',
                           optimizer=dict(type='SGD', lr=0.01))))
    validate_config(cfg, 'test', dry_run=False)
    cfg.custom_hooks[0]['tau_strat'] = 1.0
    with pytest.raises(PADConfigError, match=r"custom_hooks\[0\]\.tau_strat"):
        validate_config(cfg, 'test', dry_run=False)
    del cfg.custom_hooks[0]['tau_strat']
    cfg.custom_hooks[1]['_scope_'] = 'no_such_codebase'
    with pytest.raises(PADConfigError,
                       match=r"custom_hooks\[1\]\._scope_='no_such_codebase'"):
        validate_config(cfg, 'test', dry_run=False)
