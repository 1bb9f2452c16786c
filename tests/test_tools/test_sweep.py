"""tools/analysis_tools/sweep.py and its library (pad_mm.apis.sweep,
pad_mm.evaluation.{stats,run_logs,sweep_summary}): statistics (t
quantiles, paired CIs), log reading, and a tiny real sweep (2 configs x 2
seeds x 2 iterations) whose summary is checked against the runs' own logs,
then resumed."""
from __future__ import annotations

import csv
import json
import math
import os
import os.path as osp
import re
import statistics
import subprocess
import sys

import pytest

from pad_mm.apis.sweep import Run, config_names, write_summaries
from pad_mm.evaluation.run_logs import pad_stats, read_final_metrics
from pad_mm.evaluation.stats import mean_std, paired_difference, t_quantile
from pad_mm.evaluation.sweep_summary import render_markdown, summarise

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
SWEEP = osp.join(ROOT, 'tools', 'analysis_tools', 'sweep.py')

# two-sided 95% t quantiles t(0.975, df) from printed tables
T975 = {1: 12.706204736174707, 2: 4.302652729749464, 3: 3.182446305284263,
        4: 2.7764451051977987, 5: 2.570581835636314, 10: 2.2281388519649385,
        30: 2.0422724563012373}


@pytest.mark.parametrize('df', sorted(T975))
def test_t_quantile_matches_tables(df):
    assert t_quantile(0.975, df) == pytest.approx(T975[df], rel=1e-9)
    assert t_quantile(0.025, df) == pytest.approx(-T975[df], rel=1e-9)


def test_t_quantile_inverts_closed_form_cdfs():
    """df = 1 (Cauchy) and df = 2 have closed-form CDFs, independent of
    the library computing the quantile."""
    cdfs = {1: lambda t: 0.5 + math.atan(t) / math.pi,
            2: lambda t: 0.5 + t / (2 * math.sqrt(2 + t * t))}
    for df, cdf in cdfs.items():
        for p in (0.55, 0.6, 0.9, 0.95, 0.975, 0.99, 0.999):
            assert cdf(t_quantile(p, df)) == pytest.approx(p, abs=1e-10)
            assert t_quantile(1 - p, df) == pytest.approx(
                -t_quantile(p, df), rel=1e-9)
    # large df tends to the normal quantile 1.959964
    assert t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-5)


def test_t_quantile_errors():
    with pytest.raises(ValueError, match='p must be in'):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError, match='p must be in'):
        t_quantile(0.0, 3)
    with pytest.raises(ValueError, match='df must be > 0'):
        t_quantile(0.9, 0)


def test_mean_std_and_paired_difference():
    m, s, n = mean_std([1.0, 2.0, 4.0])
    assert (m, n) == (pytest.approx(7 / 3), 3)
    assert s == pytest.approx(statistics.stdev([1.0, 2.0, 4.0]))
    assert math.isnan(mean_std([5.0])[1])
    # paired by seed; seed 3 has no baseline and is left out
    p = paired_difference({0: 11.0, 1: 13.0, 2: 15.0, 3: 99.0},
                                {0: 10.0, 1: 11.0, 2: 12.0})
    assert p['seeds'] == [0, 1, 2] and p['diffs'] == [1.0, 2.0, 3.0]
    assert p['mean'] == pytest.approx(2.0) and p['std'] == pytest.approx(1.0)
    half = T975[2] * 1.0 / math.sqrt(3)
    assert p['ci_low'] == pytest.approx(2.0 - half, rel=1e-9)
    assert p['ci_high'] == pytest.approx(2.0 + half, rel=1e-9)
    one = paired_difference({0: 1.0}, {0: 0.5})
    assert one['n'] == 1 and math.isnan(one['ci_low'])


def test_read_final_metrics_scalars_then_text_log(tmp_path):
    a = tmp_path / '20260101_000000' / 'vis_data'
    b = tmp_path / '20260101_000500' / 'vis_data'
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    (a / 'scalars.json').write_text(
        '{"loss": 1.0, "iter": 10, "step": 10}\n'
        '{"mIoU": 40.0, "pad/var_dilation": 0.5, "step": 10}\n')
    # the resumed run's log (a later time stamp) has the final validation
    (b / 'scalars.json').write_text(
        '{"loss": 0.5, "iter": 20, "step": 20}\n'
        '{"mIoU": 55.5, "aAcc": 90.0, "pad/var_dilation": 0.25, '
        '"pad/backbone.l.conv/var_dilation": 0.25, '
        '"pad/backbone.l.conv/frac_d1": 0.75, '
        '"pad/backbone.l.conv/frac_d2": 0.25, "step": 20}\n')
    res = read_final_metrics(str(tmp_path), 'mIoU')
    assert res['value'] == 55.5 and res['step'] == 20
    stats = pad_stats(res['record'])
    assert stats['var_dilation'] == 0.25
    assert stats['layers'] == {'backbone.l.conv': dict(
        var_dilation=0.25, shares={1: 0.75, 2: 0.25})}
    with pytest.raises(ValueError, match="metric 'accuracy/top1'"):
        read_final_metrics(str(tmp_path), 'accuracy/top1')
    # no scalar log: the last validation line of the text log
    c = tmp_path / 'text'
    stamp = c / '20260101_000000'
    stamp.mkdir(parents=True)
    (stamp / '20260101_000000.log').write_text(
        '... - mmengine - INFO - Epoch(val) [1][10/10]    '
        'accuracy/top1: 12.5000  data_time: 0.1\n'
        '... - mmengine - INFO - Epoch(val) [2][10/10]    '
        'accuracy/top1: 37.5000  accuracy/top5: 90.0000  time: 0.2\n')
    res = read_final_metrics(str(c), 'accuracy/top1')
    assert res['value'] == 37.5 and res['record']['accuracy/top5'] == 90.0


def test_summary_with_two_baselines(tmp_path):
    vals = {'a': [70.0, 72.0, 71.0], 'b': [75.0, 74.0, 78.0],
            'c': [73.0, 77.0, 74.0]}
    runs = []
    for name, vs in vals.items():
        for seed, v in enumerate(vs):
            run = Run(f'{name}.py', name, seed, str(tmp_path), False,
                            None)
            run.result = dict(config=f'{name}.py', name=name, seed=seed,
                              metric='mIoU', value=v, step=5, pad=None,
                              train_wall_s=1.0, resumed=False)
            runs.append(run)
    s = summarise(runs, ['a', 'b', 'c'], ['a.py', 'b.py', 'c.py'],
                        'mIoU', ['a', 'b'], [0, 1, 2])
    pairs = {(p['name'], p['baseline']): p for p in s['paired']}
    assert sorted(pairs) == [('a', 'b'), ('b', 'a'), ('c', 'a'), ('c', 'b')]
    d = [c - b for c, b in zip(vals['c'], vals['b'])]
    p = pairs['c', 'b']
    assert p['mean'] == pytest.approx(statistics.mean(d))
    half = T975[2] * statistics.stdev(d) / math.sqrt(3)
    assert (p['ci_low'], p['ci_high']) == (
        pytest.approx(statistics.mean(d) - half),
        pytest.approx(statistics.mean(d) + half))
    md = render_markdown(s)
    assert 'paired Δ to a [95% CI] (n) | paired Δ to b [95% CI] (n)' in md
    row = next(line for line in md.splitlines() if line.startswith('| c |'))
    assert f'{statistics.mean(d):+.2f} [{p["ci_low"]:.2f}, ' \
           f'{p["ci_high"]:.2f}] (3)' in row
    assert row.startswith(f'| c | {statistics.mean(vals["c"]):.2f} ± '
                          f'{statistics.stdev(vals["c"]):.2f} (3) |')
    paths = write_summaries(s, str(tmp_path))
    assert sorted(osp.basename(p) for p in paths) == [
        'summary.csv', 'summary.json', 'summary.md', 'summary.png']


def test_config_names_are_short_and_unique():
    assert config_names(['a/b/x.py', 'a/c/y.py']) == ['x', 'y']
    assert config_names(['a/b/x.py', 'a/c/x.py']) == ['b_x', 'c_x']


# ---------------------------------------------------------------------------
# a tiny real sweep
CONFIGS = ['configs/demo/ablation/vanilla.py',
           'configs/demo/ablation/pad_markov.py']


def _tiny_options(data_root: str) -> list[str]:
    opts = []
    for loader in ('train', 'val', 'test'):
        ds = f'{loader}_dataloader.dataset'
        opts += [f'{ds}.data_root={data_root}', f'{ds}.generate.num_train=4',
                 f'{ds}.generate.num_val=2', f'{ds}.generate.size=32']
    return opts + [
        'model.data_preprocessor.size=(32,32)',
        'train_dataloader.batch_size=2', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=2', 'param_scheduler.0.end=2',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=2',
        'default_hooks.logger.interval=1',
        # a slim ResNet-18 (8..64 channels): the sweep is under test
        'model.backbone.stem_channels=8', 'model.backbone.base_channels=8',
        'model.decode_head.in_channels=64', 'model.decode_head.channels=16',
        'model.decode_head.c1_in_channels=8',
        'model.decode_head.c1_channels=8',
        'model.auxiliary_head.in_channels=32',
        'model.auxiliary_head.channels=16'
    ]


def _run_sweep(work_dir, data_root):
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    cmd = [sys.executable, SWEEP, *CONFIGS, '--seeds', '0', '1',
           '--work-dir', str(work_dir), '--baseline', 'vanilla', '--jobs',
           '2', '--threads', '1', '--cfg-options', *_tiny_options(data_root)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _stamps(run_dir):
    return sorted(n for n in os.listdir(run_dir)
                  if re.fullmatch(r'\d{8}_\d{6}', n))


def _own_logs(run_dir):
    """The final validation of a run, read from its own logs: the last
    scalar record with mIoU, and the last ``Iter(val)`` text line."""
    records = []
    for stamp in _stamps(run_dir):
        path = osp.join(run_dir, stamp, 'vis_data', 'scalars.json')
        with open(path) as f:
            records += [json.loads(line) for line in f if 'mIoU' in line]
    text = []
    for stamp in _stamps(run_dir):
        with open(osp.join(run_dir, stamp, f'{stamp}.log')) as f:
            text += [line for line in f
                     if 'Iter(val)' in line and 'mIoU:' in line]
    miou_text = float(re.search(r'mIoU: (\S+)', text[-1]).group(1))
    return records[-1], miou_text


def test_tiny_sweep_summary_matches_logs_and_resumes(tmp_path):
    work = tmp_path / 'sweep'
    data = str(tmp_path / 'textures')
    out = _run_sweep(work, data)
    assert '4 to train' in out and 'ETA' in out

    summary = json.loads((work / 'summary.json').read_text())
    assert summary['metric'] == 'mIoU' and summary['runs_finished'] == 4
    values = {}
    for name in ('vanilla', 'pad_markov'):
        for seed in (0, 1):
            run_dir = work / name / f'seed_{seed}'
            record, miou_text = _own_logs(run_dir)
            assert record['step'] == 2
            assert record['mIoU'] == pytest.approx(miou_text, abs=5e-5)
            values[name, seed] = record['mIoU']
            run = next(r for r in summary['runs']
                       if r['name'] == name and r['seed'] == seed)
            assert run['value'] == record['mIoU'] and run['step'] == 2
            result = json.loads((run_dir / 'sweep_result.json').read_text())
            assert result['value'] == record['mIoU']
            assert f'randomness.seed={seed}' in result['command']
            assert result['threads'] == 1 and not result['resumed']
            if name == 'pad_markov':
                # the dilation statistics of the same validation
                pad = run['pad']
                assert pad['var_dilation'] == pytest.approx(
                    record['pad/var_dilation'])
                assert len(pad['layers']) == 4
                for lname, lay in pad['layers'].items():
                    assert lay['var_dilation'] == pytest.approx(
                        record[f'pad/{lname}/var_dilation'])
                    assert sorted(map(int, lay['shares'])) == [1, 2, 4]
                    assert sum(lay['shares'].values()) == pytest.approx(1)
                    assert lay['shares']['2'] == pytest.approx(
                        record[f'pad/{lname}/frac_d2'])
            else:
                assert run['pad'] is None
                assert not any(k.startswith('pad/') for k in record)

    by_name = {c['name']: c for c in summary['configs']}
    assert [c['name'] for c in summary['configs']] == ['vanilla',
                                                       'pad_markov']
    for name, c in by_name.items():
        vals = [values[name, 0], values[name, 1]]
        assert c['n'] == 2
        assert c['mean'] == pytest.approx(statistics.mean(vals))
        assert c['std'] == pytest.approx(statistics.stdev(vals))
    # paired difference to vanilla with its 95% t interval (df = 1)
    (paired, ) = summary['paired']
    diffs = [values['pad_markov', s] - values['vanilla', s] for s in (0, 1)]
    mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
    assert paired['name'] == 'pad_markov' and paired['n'] == 2
    assert paired['mean'] == pytest.approx(mean)
    assert paired['ci_low'] == pytest.approx(
        mean - T975[1] * sd / math.sqrt(2))
    assert paired['ci_high'] == pytest.approx(
        mean + T975[1] * sd / math.sqrt(2))
    pm = by_name['pad_markov']['pad']['var_dilation']
    assert pm['mean'] == pytest.approx(statistics.mean(
        [r['pad']['var_dilation'] for r in summary['runs'] if r['pad']]))

    md = (work / 'summary.md').read_text()
    for name, c in by_name.items():
        assert f'| {name} | {c["mean"]:.2f} ± {c["std"]:.2f} (2) |' in md
    assert f'{mean:+.2f} [' in md
    with open(work / 'summary.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for row in rows:
        assert float(row['mIoU']) == values[row['config'], int(row['seed'])]
        if row['config'] == 'pad_markov':
            assert float(row['var_dilation']) >= 0
    png = (work / 'summary.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 1000

    # resume: finished runs are skipped, nothing is trained or rewritten
    stamps = {p: _stamps(work / p) for p in
              (f'{n}/seed_{s}' for n in ('vanilla', 'pad_markov')
               for s in (0, 1))}
    mtimes = {p: os.path.getmtime(work / p / 'sweep_result.json')
              for p in stamps}
    out = _run_sweep(work, data)
    assert '4 already finished (skipped), 0 to train' in out
    assert out.count('[sweep] skip ') == 4
    assert {p: _stamps(work / p) for p in stamps} == stamps
    assert {p: os.path.getmtime(work / p / 'sweep_result.json')
            for p in stamps} == mtimes
    assert json.loads((work / 'summary.json').read_text())['configs'] == \
        summary['configs']

    # an interrupted run (checkpoint at iteration 1, no result) resumes
    # from its last checkpoint and trains only iteration 2
    run_dir = work / 'pad_markov' / 'seed_1'
    os.remove(run_dir / 'sweep_result.json')
    os.remove(run_dir / 'iter_2.pth')
    (run_dir / 'last_checkpoint').write_text(str(run_dir / 'iter_1.pth'))
    out = _run_sweep(work, data)
    assert '3 already finished (skipped), 1 to train' in out
    assert 'resuming from its last checkpoint' in out
    result = json.loads((run_dir / 'sweep_result.json').read_text())
    assert result['resumed'] and '--resume' in result['command']
    new = sorted(set(_stamps(run_dir)) - set(stamps['pad_markov/seed_1']))
    assert len(new) == 1
    log = (run_dir / new[0] / f'{new[0]}.log').read_text()
    assert 'Iter(train) [2/2]' in log and 'Iter(train) [1/2]' not in log
    record, _ = _own_logs(run_dir)
    assert result['value'] == record['mIoU']
    final = json.loads((work / 'summary.json').read_text())
    assert final['runs_finished'] == 4
    assert next(r for r in final['runs'] if r['name'] == 'pad_markov' and
                r['seed'] == 1)['value'] == record['mIoU']


def test_bad_arguments_are_named(tmp_path):
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')

    def run(*args):
        return subprocess.run([sys.executable, SWEEP, *args], cwd=ROOT,
                              env=env, capture_output=True, text=True,
                              timeout=300)

    p = run(CONFIGS[0], '--seeds', '0', '--work-dir', str(tmp_path),
            '--baseline', 'nope')
    assert p.returncode != 0 and "--baseline='nope'" in p.stderr
    p = run(CONFIGS[0], '--seeds', '0', '--work-dir', str(tmp_path),
            '--cfg-options', 'randomness.seed=3')
    assert p.returncode != 0 and 'randomness.seed=3' in p.stderr
    p = run('configs/nope.py', '--seeds', '0', '--work-dir', str(tmp_path))
    assert p.returncode != 0 and "no such file 'configs/nope.py'" in p.stderr


def _tiny_imagenet(root):
    """ILSVRC-2012 layout (as tests of the classification zoo use): 4
    training and 2 validation images, meta/{train,val}.txt."""
    import numpy as np
    from PIL import Image
    wnids = ['n01440764', 'n01443537', 'n01484850', 'n01491361']
    rng = np.random.default_rng(0)
    items = {'train': [(f'{w}/{w}_{i + 1}.JPEG', i)
                       for i, w in enumerate(wnids)],
             'val': [(f'ILSVRC2012_val_{i + 1:08d}.JPEG', y)
                     for i, y in enumerate((1, 3))]}
    os.makedirs(osp.join(root, 'meta'))
    for split, files in items.items():
        for f, _ in files:
            path = osp.join(root, split, f)
            os.makedirs(osp.dirname(path), exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (40, 48, 3),
                                         dtype=np.uint8)).save(path)
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as fh:
            fh.writelines(f'{f} {y}\n' for f, y in files)


def test_classification_config(tmp_path):
    """An mmpretrain config (epoch-based, PAD ResNet-50): accuracy/top1 by
    default, read from the run's log, and the PAD statistics."""
    data = tmp_path / 'imagenet'
    _tiny_imagenet(str(data))
    base = osp.join(ROOT, 'configs/pad_imagenet/'
                    'pad_resnet50_8xb24-120e_in1k.py')
    loader = ("dict(batch_size=2, num_workers=0, persistent_workers=False, "
              f"dataset=dict(data_root={str(data)!r}, pipeline=[{{}}]))")
    cfg = tmp_path / 'tiny_pad_resnet50.py'
    cfg.write_text(
        f'_base_ = [{base!r}]\n'
        'train_dataloader = ' + loader.format(
            "dict(type='LoadImageFromFile'), dict(type='RandomResizedCrop', "
            "scale=64), dict(type='PackInputs')") + '\n'
        'val_dataloader = ' + loader.format(
            "dict(type='LoadImageFromFile'), dict(type='ResizeEdge', "
            "scale=72, edge='short'), dict(type='CenterCrop', crop_size=64),"
            " dict(type='PackInputs')") + '\n'
        'test_dataloader = val_dataloader\n'
        'train_cfg = dict(max_epochs=1, val_interval=1)\n'
        'default_hooks = dict(logger=dict(interval=1))\n')
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    work = tmp_path / 'sweep'
    proc = subprocess.run(
        [sys.executable, SWEEP, str(cfg), '--seeds', '3', '--work-dir',
         str(work), '--threads', '1'], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((work / 'summary.json').read_text())
    assert summary['metric'] == 'accuracy/top1'
    (run, ) = summary['runs']
    run_dir = work / 'tiny_pad_resnet50' / 'seed_3'
    (stamp, ) = _stamps(run_dir)
    with open(run_dir / stamp / 'vis_data' / 'scalars.json') as f:
        (record, ) = [json.loads(line) for line in f
                      if 'accuracy/top1' in line]
    assert record['step'] == 1  # epoch 1
    assert run['value'] == record['accuracy/top1'] and run['step'] == 1
    assert run['value'] in (0.0, 50.0, 100.0)  # 2 validation images
    assert run['pad']['var_dilation'] == pytest.approx(
        record['pad/var_dilation'])
    assert len(run['pad']['layers']) == 3  # layer2.{1,2,3}.conv2
    assert summary['configs'][0]['n'] == 1
    assert '| tiny_pad_resnet50 | ' in (work / 'summary.md').read_text()
