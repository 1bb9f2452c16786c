"""tools/analysis_tools/gpu_check.py: its --smoke run (Triton's interpreter
on the CPU, tiny cases) writes the JSON the GPU run writes, with every
kernel variant it checks correct and deterministic."""
import json
import os
import subprocess
import sys

import pytest

from helpers.tools import load_tool

from pad_mm.ops import HAS_TRITON

pytestmark = pytest.mark.skipif(not HAS_TRITON,
                                reason='triton is not installed')


def _script(repo_root):
    return os.path.join(repo_root, 'tools', 'analysis_tools', 'gpu_check.py')


def _run(repo_root, tmp_path, *extra):
    """Run as documented: from the repo root, with no PYTHONPATH."""
    out = tmp_path / 'gpu_check.json'
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    env.pop('TRITON_INTERPRET', None)  # --smoke sets it itself
    proc = subprocess.run(
        [sys.executable, _script(repo_root), '--smoke', '--out', str(out),
         *extra], capture_output=True, text=True, env=env, cwd=repo_root,
        timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_smoke_run_checks_every_axis(repo_root, tmp_path):
    data = _run(repo_root, tmp_path)
    assert data['finished'] and data['device'] == 'cpu (interpreter)'
    assert data['command'].startswith(
        'python tools/analysis_tools/gpu_check.py --smoke')
    cases = data['correctness']
    names = [c['name'] for c in cases]
    assert len(names) == 8
    for part in ('/soft/', '/straight_through/', '/hard/', 'channels_last',
                 'nchw', 's2/', 'depthwise', 'bfloat16',
                 'autocast_bf16_fp32_weights'):
        assert any(part in n for n in names), part
    for c in cases:
        assert 'error' not in c, c
        assert c['passed'] and c['deterministic'] and c['grad_dtypes_ok'], c
        expected = {'out', 'grad_input', 'grad_weight', 'grad_bias'}
        if '/hard/' not in c['name']:
            expected.add('grad_probs')
        assert expected <= set(c['errors'])
        if 'float32/' in c['name']:
            assert max(c['errors'].values()) < 1e-5  # fp32: tight
    (speed, ) = data['speed']
    assert 'error' not in speed, speed
    for key in ('fwd', 'fwd_bwd', 'hard_inference'):
        ms = speed[f'{key}_ms']
        assert ms['cudnn'] > 0 and ms['pad'] > 0
        assert speed[f'{key}_ratio'] == pytest.approx(ms['pad'] / ms['cudnn'])
    (model, ) = data['model']
    assert 'error' not in model, model
    assert model['step_ratio'] == pytest.approx(model['pad_step_ms'] /
                                                model['vanilla_step_ms'])


def test_time_limit_keeps_a_complete_json(repo_root, tmp_path):
    data = _run(repo_root, tmp_path, '--time-limit', '0')
    assert data['finished']
    for section in ('correctness', 'speed', 'model'):
        assert data[section] and all(
            c['skipped'] == 'time limit' for c in data[section])


def test_rejects_bad_arguments(repo_root, capsys):
    mod = load_tool(repo_root, 'analysis_tools/gpu_check.py')
    for argv, match in ((['--repeats', '5'], '--repeats must be >= 20'),
                        (['--sections', 'speed,nope'], '--sections')):
        with pytest.raises(SystemExit):
            mod.parse_args(argv)
        assert match in capsys.readouterr().err


def test_starts_from_the_repo_root_with_torch_and_triton_only(repo_root):
    """Isolated mode (no PYTHONPATH, no current folder on sys.path) and
    OpenMMLab hidden: the tool finds pad_mm by itself and imports nothing
    of OpenMMLab."""
    code = ('import runpy, sys\n'
            'for m in ["mmengine", "mmcv", "mmseg", "mmpretrain"]:\n'
            '    sys.modules[m] = None\n'
            'sys.argv = ["tools/analysis_tools/gpu_check.py", "--help"]\n'
            'try:\n'
            '    runpy.run_path(sys.argv[0], run_name="__main__")\n'
            'except SystemExit as e:\n'
            '    assert e.code == 0, e.code\n'
            'loaded = [m for m in sys.modules if m.split(".")[0] in '
            '("mmengine", "mmcv", "mmseg", "mmpretrain") and '
            'sys.modules[m] is not None]\n'
            'assert not loaded, loaded\n'
            'assert "pad_mm.ops" in sys.modules\n'
            'print("ok")')
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    proc = subprocess.run([sys.executable, '-I', '-c', code],
                          capture_output=True, text=True, env=env,
                          cwd=repo_root, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == 'ok'
    assert '--smoke' in proc.stdout  # the usage was printed
