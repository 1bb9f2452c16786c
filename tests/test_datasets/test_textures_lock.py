"""ensure_textures_dataset under concurrency (parallel sweep runs share
data_root): one process generates, the others wait and reuse it."""
from __future__ import annotations

import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
# import, say so, wait for the 'go' file, then all call at the same moment
CODE = '''
import os, sys, time
import pad_mm.datasets.textures as t
print('ready', flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
print(t.ensure_textures_dataset(sys.argv[1], seed=3, num_train=40,
                                num_val=2, size=32), flush=True)
'''


def test_concurrent_generation_happens_once(tmp_path):
    root, go = str(tmp_path / 'textures'), str(tmp_path / 'go')
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    procs = [subprocess.Popen([sys.executable, '-c', CODE, root, go],
                              env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    for p in procs:
        assert p.stdout.readline().strip() == 'ready'
    open(go, 'w').close()
    made = sorted(p.communicate(timeout=300)[0].strip() for p in procs)
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert made == ['False', 'False', 'True']
    with open(osp.join(root, 'meta.json')) as f:
        meta = json.load(f)
    assert (meta['seed'], meta['num_train'], meta['size']) == (3, 40, 32)
    assert len(os.listdir(osp.join(root, 'images', 'train'))) == 40
    # no temporary folders left next to it
    assert sorted(os.listdir(tmp_path)) == ['.textures.lock', 'go',
                                            'textures']
