"""tools/run_demo.sh: which configs it trains, tests and publishes, and
where (a copy of the script next to a stand-in python and set-up script
that record their calls; no training)."""
import os
import os.path as osp
import shutil
import stat
import subprocess

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
FAKE_PY = '''#!/usr/bin/env bash
echo "$*" >> "$CALLS"
if [[ "$1" == tools/train.py ]]; then
    mkdir -p "$4"
    echo "$4/iter_1.pth" > "$4/last_checkpoint"
fi
'''
MAIN = ('configs/demo/evidence/pad_fcn_patchnet_evidence.py',
        'configs/demo/evidence/fcn_patchnet_evidence.py')
SEG = ('configs/demo/pad_deeplabv3plus_r18_textures.py',
       'configs/demo/deeplabv3plus_r18_textures.py')
CLS = ('configs/demo_cls/pad_resnet18_textures_cls.py',
       'configs/demo_cls/resnet18_textures_cls.py')


@pytest.fixture
def demo(tmp_path):
    tools = tmp_path / 'repo' / 'tools'
    tools.mkdir(parents=True)
    shutil.copy(osp.join(ROOT, 'tools', 'run_demo.sh'), tools)
    (tools / 'setup_env.sh').write_text('echo setup >> "$CALLS"\n')
    fake = tmp_path / 'python'
    fake.write_text(FAKE_PY)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / 'calls.txt'

    def run(*args, **env):
        full = {k: v for k, v in os.environ.items() if k != 'WORK_DIR'}
        full.update(PYTHON=str(fake), CALLS=str(calls), **env)
        proc = subprocess.run(['bash', str(tools / 'run_demo.sh'), *args],
                              cwd=tmp_path, env=full, capture_output=True,
                              text=True, timeout=60)
        lines = calls.read_text().splitlines() if calls.exists() else []
        calls.unlink(missing_ok=True)
        return proc, lines
    return run


def _job(config, work_dir=None):
    name = osp.basename(config)[:-3]
    work_dir = work_dir or f'work_dirs/{name}'
    return [f'tools/train.py {config} --work-dir {work_dir}',
            f'tools/test.py {config} {work_dir}/iter_1.pth '
            f'--work-dir {work_dir}/test',
            f'tools/publish_model.py {work_dir}/iter_1.pth '
            f'{work_dir}/{name}.pth']


@pytest.mark.parametrize('args,configs', [
    ((), MAIN[:1]), ((MAIN[1], ), MAIN[1:]), (('--with-baseline', ), MAIN),
    (('--textures', ), SEG[:1]), (('--textures', '--with-baseline'), SEG),
    ((SEG[1], ), SEG[1:]),
    (('--cls', ), CLS[:1]), (('--cls', CLS[1]), CLS[1:]),
    (('--cls', '--with-baseline'), CLS), (('--with-baseline', '--cls'), CLS)
])
def test_trains_tests_and_publishes_each_config(demo, args, configs):
    proc, calls = demo(*args)
    assert proc.returncode == 0, proc.stderr
    assert calls == ['setup'] + sum((_job(c) for c in configs), [])
    for c in configs:
        name = osp.basename(c)[:-3]
        assert (f'{name}: train wall time: ' in proc.stdout)


def test_work_dir_sets_one_models_folder(demo):
    proc, calls = demo(WORK_DIR='w/mine')
    assert proc.returncode == 0, proc.stderr
    assert calls == ['setup'] + _job(MAIN[0], 'w/mine')


@pytest.mark.parametrize('args,env,message', [
    (('--baseline', ), {}, 'unknown option --baseline (allowed: --cls, '
     '--textures, --with-baseline)'),
    (('--with-baseline', MAIN[1]), {}, 'it takes no CONFIG (got '
     f'{MAIN[1]})'),
    (('--with-baseline', ), {'WORK_DIR': 'w'}, 'WORK_DIR names one model'),
])
def test_refuses_what_it_cannot_do(demo, args, env, message):
    proc, calls = demo(*args, **env)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert calls == []  # nothing set up or trained
