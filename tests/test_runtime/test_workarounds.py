"""The upstream workarounds (docs/advanced/upstream_workarounds.md): applied only
when asked (pad_mm.seg / pad_mm.cls / a config's custom_imports), all off
with PAD_MM_NO_PATCH=1, each off with a log line on an upstream version it
is not written for, each listed in the docs."""
import os
import os.path as osp
import subprocess
import sys
import textwrap

from pad_mm.runtime import NO_PATCH_ENV, WORKAROUNDS

# every mmengine name a workaround replaces, read in a fresh process
STATE = '''
import mmengine.dist.utils as du
import mmengine.runner as rp
import mmengine.runner.checkpoint as ckpt
import mmengine.runner.runner as rr
import torch
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner
def state():
    return dict(torch_load=ckpt.torch is torch,
                load_state_dict=ckpt.load_state_dict is ORIG['lsd'],
                runner_load_state_dict=rp.load_state_dict is ORIG['lsd'],
                save=ckpt.save_checkpoint is ORIG['save'],
                runner_save=rr.save_checkpoint is ORIG['save'],
                dist=du._init_dist_pytorch is ORIG['dist'],
                hook=CheckpointHook._save_checkpoint_with_step is ORIG['hook'],
                resume=Runner.load_or_resume is ORIG['resume'])
ORIG = dict(lsd=ckpt.load_state_dict, save=ckpt.save_checkpoint,
            dist=du._init_dist_pytorch,
            hook=CheckpointHook._save_checkpoint_with_step,
            resume=Runner.load_or_resume)
'''


def _run(repo_root, code, **env):
    run_env = {k: v for k, v in os.environ.items()
               if k not in (NO_PATCH_ENV, 'PYTHONPATH')}
    run_env.update(PYTHONPATH=repo_root, **env)
    out = subprocess.run(
        [sys.executable, '-c', 'import logging, sys\n'
         'logging.basicConfig(level=logging.INFO, stream=sys.stdout)\n' +
         STATE + textwrap.dedent(code)], capture_output=True, text=True,
        env=run_env, cwd=repo_root, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_import_pad_mm_patches_nothing_and_seg_patches_all(repo_root):
    out = _run(repo_root, '''
        import pad_mm, pad_mm.models, pad_mm.runtime
        print('A', all(state().values()))
        import pad_mm.seg
        print('B', not any(state().values()), state())
        print('APPLIED', pad_mm.runtime.applied_workarounds())
        ''')
    assert 'A True' in out
    assert 'B True' in out, out
    assert f"APPLIED {[w.name for w in WORKAROUNDS]}" in out
    assert out.count(f'set {NO_PATCH_ENV}=1 to turn this off') == 1


def test_switch_off_leaves_mmengine_unpatched(repo_root, tmp_path):
    """PAD_MM_NO_PATCH=1: import pad_mm, pad_mm.seg, pad_mm.cls and a
    config's custom_imports=['pad_mm'] change no mmengine name."""
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("custom_imports = dict(imports=['pad_mm'], "
                   "allow_failed_imports=False)\n")
    out = _run(repo_root, f'''
        from mmengine.config import Config
        Config.fromfile({str(cfg)!r})
        import pad_mm.seg, pad_mm.cls, pad_mm.runtime
        from mmseg.registry import MODELS
        assert MODELS.get('PADBackbone') is not None  # registered all the same
        print('UNPATCHED', all(state().values()), state())
        print('APPLIED', pad_mm.runtime.applied_workarounds())
        ''', **{NO_PATCH_ENV: '1'})
    assert 'UNPATCHED True' in out, out
    assert 'APPLIED []' in out
    assert 'turn this off' not in out


def test_other_upstream_version_switches_a_workaround_off(repo_root):
    out = _run(repo_root, '''
        import dataclasses
        import pad_mm.runtime.workarounds as w
        w.WORKAROUNDS = tuple(
            dataclasses.replace(x, versions=('0.0.1', ))
            if x.name == 'cpu-dist-init' else x for x in w.WORKAROUNDS)
        applied = w.apply_workarounds()
        print('APPLIED', applied)
        s = state()
        print('DIST', s.pop('dist'), 'OTHERS', not any(s.values()))
        ''')
    assert "'cpu-dist-init'" not in out.split('APPLIED', 1)[1].split('\n')[0]
    assert 'DIST True OTHERS True' in out, out
    import mmengine
    assert (f"pad_mm: workaround 'cpu-dist-init' (mmengine.dist.utils."
            f"_init_dist_pytorch needs CUDA) is written for mmengine 0.0.1, "
            f"found {mmengine.__version__}: not applied") in out


def test_each_workaround_is_documented_and_names_its_upstream(repo_root):
    import importlib
    docs = open(osp.join(repo_root, 'docs', 'advanced',
                         'upstream_workarounds.md')).read()
    assert NO_PATCH_ENV in docs
    assert len({w.name for w in WORKAROUNDS}) == len(WORKAROUNDS) == 5
    for w in WORKAROUNDS:
        assert f'| `{w.name}` |' in docs, w.name
        path = w.module.replace('pad_mm.', '').replace('.', '/') + '.py'
        assert f'`{path}`' in docs, path
        module = importlib.import_module(w.module)
        assert w.name in module.__doc__, w.module
        assert callable(getattr(module, w.apply))
        assert w.upstream and w.package == 'mmengine' and w.versions
