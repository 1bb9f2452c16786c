"""tools/analysis_tools/gpu_check.py, run as documented (from the repo
root, no PYTHONPATH) in --smoke mode (Triton's interpreter on the CPU):
all eight sections with their cases and statuses; a crashed section is
recorded as failed and a hung one as timed out, with the cases they wrote,
and the later sections still run."""
import json
import os
import subprocess
import sys

import pytest

from helpers.tools import load_tool

from pad_mm.ops import HAS_TRITON
from pad_mm.ops.gpu_check import SECTION_NAMES
from pad_mm.ops.gpu_check.correctness import SMOKE_MATRIX

pytestmark = pytest.mark.skipif(not HAS_TRITON,
                                reason='triton is not installed')

CASES = {
    'environment': ['versions', 'device', 'flags', 'imports'],
    'compile': ['warm_compile', 'auto_first_call/soft_fwd_bwd',
                'auto_first_call/hard', 'triton_first_call/soft_fwd_bwd'],
    'quick_correctness': ['soft/float32', 'soft/bfloat16', 'hard/float16',
                          'soft/bfloat16/gemm_backward'],
    'speed': ['tiny/bf16/channels_last',
              'tile_sweep/tiny/bf16/channels_last'],
    'model': ['deeplabv3plus_r101/vanilla', 'deeplabv3plus_r101/pad',
              'deeplabv3plus_r101/pad_vs_vanilla'],
    'memory': ['tiny/bf16/channels_last'],
    'correctness_matrix': list(SMOKE_MATRIX) + ['int32_edge/beyond'],
    'graphs': [f'cuda_graph/{i}/{m}' for i in ('triton', 'auto')
               for m in ('soft', 'hard')] + [
        'torch_compile/auto/soft', 'torch_compile/triton/soft',
        'torch_compile/auto/hard'],
}


def _run(repo_root, out, *extra):
    """Run as documented: from the repo root, with no PYTHONPATH."""
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    env.pop('TRITON_INTERPRET', None)  # the runner sets it for --smoke
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/gpu_check.py', '--smoke',
         '--out', str(out), *extra], capture_output=True, text=True,
        env=env, cwd=repo_root, timeout=3600)
    return proc, json.loads(out.read_text())


@pytest.fixture(scope='module')
def smoke(repo_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('gpu_check')
    proc, data = _run(repo_root, tmp / 'smoke.json', '--table',
                      str(tmp / 'smoke.md'))
    return proc, data, (tmp / 'smoke.md').read_text()


def test_smoke_runs_all_eight_sections(smoke):
    proc, data, table = smoke
    sections = data['sections']
    detail = {n: (s['status'], s.get('error'), s.get('log_tail', '')[-800:],
                  [(c['name'], c.get('error')) for c in s['cases']
                   if c['status'] in ('failed', 'error')])
              for n, s in sections.items() if s['status'] != 'passed'}
    assert proc.returncode == 0 and not detail, (detail, proc.stdout[-2000:])
    assert data['finished'] and data['smoke']
    assert data['command'].startswith(
        'python tools/analysis_tools/gpu_check.py --smoke')
    assert list(sections) == list(SECTION_NAMES)
    for i, (name, s) in enumerate(sections.items()):
        assert s['index'] == i + 1 and s['exit_code'] == 0 and s['complete']
        assert [c['name'] for c in s['cases']] == CASES[name], name
        assert f'| {i + 1} | {name} | passed |' in table
    skipped = [(n, c['name']) for n, s in sections.items()
               for c in s['cases'] if c['status'] != 'passed']
    # only what needs a GPU: CUDA graphs, torch.compile of forced Triton
    # (in the interpreter dynamo would trace the interpreter itself)
    assert skipped == [('graphs', c) for c in CASES['graphs'][:4]] + [
        ('graphs', 'torch_compile/triton/soft')]
    assert all(c['reason'] == 'needs CUDA' for c in sections['graphs'][
        'cases'] if c['status'] == 'skipped')


def test_smoke_sections_check_values_and_report_figures(smoke):
    _, data, table = smoke
    s = {n: {c['name']: c for c in v['cases']}
         for n, v in data['sections'].items()}
    env = s['environment']
    assert env['imports']['openmmlab_modules'] == []
    assert env['device']['triton_interpret'] is True
    warm = s['compile']['warm_compile']
    assert warm['target'] == 'sm_90' and warm['variants'] >= 5
    assert not warm['errors']
    for sec in ('quick_correctness', 'correctness_matrix'):
        for name, c in s[sec].items():
            if 'errors' not in c:
                continue
            assert all(c['errors'][k] <= c['tolerance'][k]
                       for k in c['errors']), (name, c['errors'])
            if c['spec']['dtype'] == 'float32' and not c['spec']['tf32'] \
                    and not c['spec']['autocast']:
                assert max(c['errors'].values()) < 1e-5, name
    quick = s['quick_correctness']
    assert set(quick['soft/bfloat16']['errors']) == {
        'out', 'grad_input', 'grad_weight', 'grad_bias', 'grad_probs'}
    assert set(quick['hard/float16']['errors']) == {
        'out', 'grad_input', 'grad_weight', 'grad_bias'}
    matrix = s['correctness_matrix']
    assert matrix['tf32_via_allow_tf32']['tf32_enabled'] is True
    assert matrix['N0/bfloat16/soft']['errors']['out'] == 0
    edge = matrix['int32_edge/beyond']
    assert edge['numel'] == 2**31 and edge['supports'] is False
    assert 'triton' in edge['forced_error']
    for name, c in s['speed'].items():
        if name.startswith('tile_sweep/'):  # checked below
            continue
        assert c['values_ok']
        for m in ('fwd', 'fwd_bwd', 'hard_inference'):
            ms = c[m]['ms']
            assert set(ms) == {'cudnn', 'triton', 'reference', 'auto'} | (
                {'triton_gemm'} if m == 'fwd_bwd' else set())
            assert c[m]['ratio_to_cudnn']['triton'] == pytest.approx(
                ms['triton'] / ms['cudnn'])
        for m in ('fwd_bwd', 'hard_inference'):  # relaunched, timed alone
            kernels = c['per_kernel'][m]['kernels']
            assert kernels and all(k['us'] > 0 and k['launches'] >= 1
                                   for k in kernels.values()), kernels
        assert len(c['per_kernel']['fwd_bwd']['kernels']) > len(
            c['per_kernel']['hard_inference']['kernels'])
    assert set(s['speed']['tiny/bf16/channels_last']['targets']) == {
        'fwd_bwd <= 1.5x cuDNN', 'hard_inference <= 1.1x cuDNN'}
    model = s['model']
    assert model['deeplabv3plus_r101/pad_vs_vanilla'][
        'step_ratio'] == pytest.approx(
        model['deeplabv3plus_r101/pad']['step_ms'] /
        model['deeplabv3plus_r101/vanilla']['step_ms'])
    # the tile sweep: every candidate of every kernel launched, timed and
    # its values checked; the best is one of them
    from pad_mm.ops.impls.triton_tiles import TILE_CANDIDATES
    sweep = s['speed']['tile_sweep/tiny/bf16/channels_last']
    assert set(sweep['kernels']) == set(TILE_CANDIDATES)
    for k, v in sweep['kernels'].items():
        assert [r['tiles'] for r in v['candidates']] == list(
            TILE_CANDIDATES[k])
        for r in v['candidates']:
            assert r['launches'] >= 1 and r['us'] > 0 and r['values_ok'], r
        assert v['best'] in [r['tiles'] for r in v['candidates']]
    assert 'Tile sweep, tiny/bf16/channels_last:' in table
    # the backward's GEMM path: timed, its values checked
    sp = s['speed']['tiny/bf16/channels_last']
    assert sp['errors']['triton_gemm/fwd_bwd'] <= sp['tolerance']['fwd_bwd']
    assert set(quick['soft/bfloat16/gemm_backward']['spec']) >= {'bwd_path'}
    assert quick['soft/bfloat16/gemm_backward']['spec']['bwd_path'] == 'gemm'
    assert 'bwd_input_gemm_kernel' in quick['soft/bfloat16/gemm_backward'][
        'kernels']
    mem = s['memory']['tiny/bf16/channels_last']
    assert mem['fwd_bwd']['peak_mib']['triton'] is None  # no CUDA stats
    assert set(mem['target']) == {
        'fwd_bwd peak <= 1.3x cuDNN (triton)',
        'fwd_bwd peak <= 1.3x cuDNN (triton_gemm)'}
    for name, c in s['graphs'].items():
        if name.startswith('torch_compile') and c['status'] == 'passed':
            assert c['backend'] == 'aot_eager'
            assert max(c['errors']) <= c['tolerance'], name


def test_a_crash_and_a_hang_are_contained(repo_root, tmp_path):
    proc, data = _run(
        repo_root, tmp_path / 'inject.json', '--sections',
        'environment,memory,graphs', '--inject', 'environment=crash',
        '--inject', 'graphs=hang', '--budget', 'graphs=20')
    assert proc.returncode == 1
    env, mem, graphs = (data['sections'][n] for n in (
        'environment', 'memory', 'graphs'))
    # the crash: its first case kept, the section failed, the next ran
    assert env['status'] == 'failed' and env['exit_code'] != 0
    assert [c['name'] for c in env['cases']] == ['versions']
    assert 'exited with code' in env['error']
    assert mem['status'] == 'passed'
    # the hang: killed at its budget, its first case kept
    assert graphs['status'] == 'timed_out'
    assert graphs['error'] == 'killed after 20 s (budget)'
    assert [c['name'] for c in graphs['cases']] == [
        'cuda_graph/triton/soft']
    assert 18 <= graphs['wall_s'] < 40
    assert data['finished']


def test_time_limit_keeps_a_complete_json(repo_root, tmp_path):
    proc, data = _run(repo_root, tmp_path / 'limit.json', '--time-limit',
                      '0')
    assert proc.returncode == 1 and data['finished']
    assert list(data['sections']) == list(SECTION_NAMES)
    for s in data['sections'].values():
        assert s['status'] == 'skipped' and s['reason'] == 'time limit'
        assert s['cases'] == []


def test_rejects_bad_arguments(repo_root, capsys):
    mod = load_tool(repo_root, 'analysis_tools/gpu_check.py')
    for argv, match in ((['--repeats', '5'], '--repeats must be >= 20'),
                        (['--sections', 'speed,nope'], '--sections'),
                        (['--budget', 'nope=3'], 'SECTION one of'),
                        (['--budget', 'speed=-1'], 'positive number'),
                        (['--inject', 'speed=boom'], 'error|crash|hang')):
        with pytest.raises(SystemExit):
            mod.parse_args(argv)
        assert match in capsys.readouterr().err, argv
    args = mod.parse_args(['--budget', 'speed=12', '--inject',
                           'model=hang', '--sections', 'speed,model'])
    assert args.budget == {'speed': 12.0} and args.inject == {
        'model': 'hang'} and args.sections == ['speed', 'model']


def test_starts_from_the_repo_root_with_torch_and_triton_only(repo_root):
    """Isolated mode (no PYTHONPATH, no current folder on sys.path) and
    OpenMMLab hidden: the tool finds pad_mm by itself, and neither it nor
    any module of its sections imports anything of OpenMMLab."""
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
            'import importlib, pkgutil\n'
            'import pad_mm.ops.gpu_check as g\n'
            'for m in pkgutil.iter_modules(g.__path__):\n'
            '    importlib.import_module("pad_mm.ops.gpu_check." + m.name)\n'
            'loaded = [m for m in sys.modules if m.split(".")[0] in '
            '("mmengine", "mmcv", "mmseg", "mmpretrain") and '
            'sys.modules[m] is not None]\n'
            'assert not loaded, loaded\n'
            'print("ok")')
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    proc = subprocess.run([sys.executable, '-I', '-c', code],
                          capture_output=True, text=True, env=env,
                          cwd=repo_root, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == 'ok'
    assert '--smoke' in proc.stdout  # the usage was printed


def _section_pids(out) -> list[int]:
    """Processes running a section of the check writing ``out``."""
    pids = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open(f'/proc/{d}/cmdline', 'rb') as f:
                cmd = f.read().decode(errors='replace')
        except OSError:
            continue
        if 'pad_mm.ops.gpu_check.child' in cmd and str(out) in cmd:
            pids.append(int(d))
    return pids


@pytest.mark.skipif(not os.path.isdir('/proc'), reason='needs /proc')
def test_sigterm_leaves_no_section_running(repo_root, tmp_path):
    """``timeout`` or a closed terminal sends SIGTERM/SIGHUP: the running
    section (its own session, which the signal does not reach) is killed
    with the check, and the JSON says so (it used to run on, orphaned)."""
    import signal
    import time
    out = tmp_path / 'term.json'
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    proc = subprocess.Popen(
        [sys.executable, 'tools/analysis_tools/gpu_check.py', '--smoke',
         '--out', str(out), '--sections', 'environment,memory', '--inject',
         'environment=hang'], cwd=repo_root, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:  # the hang begins after a case
            try:
                cases = json.loads(out.read_text())['sections'][
                    'environment']['cases']
            except (OSError, ValueError, KeyError):
                cases = []
            if cases and _section_pids(out):
                break
            time.sleep(0.5)
        assert _section_pids(out), 'the section never started'
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM
        for _ in range(20):
            if not _section_pids(out):
                break
            time.sleep(0.5)
        assert _section_pids(out) == []
        data = json.loads(out.read_text())
        assert data['finished'] is False
        assert data['terminated_by_signal'] == signal.SIGTERM
        env_section = data['sections']['environment']
        assert env_section['status'] == 'failed'
        assert 'terminated by signal' in env_section['error']
        assert [c['name'] for c in env_section['cases']] == ['versions']
        assert data['sections']['memory']['status'] == 'pending'
    finally:
        for pid in _section_pids(out):
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
