"""pad_mm.evaluation.learned: the analysis guide's tables from the analysis
tools' JSON files (synthetic files of the tools' layout)."""
import json
import math

import pytest

from pad_mm.evaluation.learned import (learned_markdown, learned_summary,
                                       seed_spread)


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _layer(name, mean, var, p_max, hist):
    return dict(name=name, mean=mean, var=var, p_max=p_max,
                dilations=[1, 2, 4], hist=hist, spatial_var=0.0)


def _run(seed, value, shares0, var0):
    return dict(name='pad_demo', seed=seed, value=value, pad=dict(
        var_dilation=var0, mean_dilation=1.0, layers={
            'l.0': dict(shares={'1': shares0, '2': 1 - shares0, '4': 0.0},
                        var_dilation=var0)}))


@pytest.fixture
def out(tmp_path):
    _write(tmp_path / 'stats' / 'dilation_stats.json', dict(
        config='configs/demo/pad_demo.py', checkpoint='w/iter_7.pth',
        metrics={'mIoU': 90.5}, mean_dilation=1.5, var_dilation=0.25,
        p_max=0.9, off_argmax=0.1,
        layers=[_layer('l.0', 1.25, 0.1875, 0.95, [0.75, 0.25, 0.0]),
                _layer('l.1', 2.0, 0.5, 0.85, [0.5, 0.0, 0.5])]))
    _write(tmp_path / 'rf' / 'rf.json', dict(
        pixels=[[4, 2], [8, 9]], models=[
            dict(label='PAD', units=[dict(rf_num_positions=63),
                                     dict(rf_num_positions=109)]),
            dict(label='regular', units=[dict(rf_num_positions=63),
                                         dict(rf_num_positions=56)])]))
    _write(tmp_path / 'activation' / 'activation.json', dict(
        layer='backbone.layer4.1', models=[
            dict(label='PAD', active_fraction=0.7312),
            dict(label='regular', active_fraction=0.7201)]))
    _write(tmp_path / 'seeds.json', dict(metric='mIoU', runs=[
        _run(1, 91.0, 0.5, 0.2), _run(0, 89.0, 1.0, 0.0),
        dict(name='pad_demo', seed=2, value=None, pad=None),  # unfinished
        dict(name='vanilla', seed=0, value=80.0, pad=None)]))
    return tmp_path


def _seeds(out):
    return str(out / 'seeds.json')


def test_summary_reads_every_file(out):
    s = learned_summary(str(out), _seeds(out))
    assert s['checkpoint'] == 'w/iter_7.pth'
    assert [lay['name'] for lay in s['layers']] == ['l.0', 'l.1']
    assert s['layers'][1]['hist'] == [0.5, 0.0, 0.5]
    assert s['all'] == dict(mean=1.5, var=0.25, p_max=0.9)
    assert s['rf'] == [dict(pixel=[4, 2], PAD=63, regular=63),
                       dict(pixel=[8, 9], PAD=109, regular=56)]
    assert s['activation'] == dict(layer='backbone.layer4.1', PAD=0.7312,
                                   regular=0.7201)
    seeds = s['seeds']  # the config's name from the statistics' config
    assert seeds['seeds'] == [0, 1]  # finished runs only, in seed order
    mean, std, n = seeds['value']
    assert (mean, n) == (90.0, 2) and math.isclose(std, math.sqrt(2))
    share = seeds['layers']['l.0']['shares']['1']
    assert share[0] == 0.75 and math.isclose(share[1], math.sqrt(0.125))


def test_markdown_tables(out):
    text = learned_markdown(learned_summary(str(out), _seeds(out)))
    blocks = text.strip().split('\n\n')
    assert len(blocks) == 4
    assert blocks[0].splitlines() == [
        '| PAD layer | E[d] | σ²(d) | p_max | chosen 1 / 2 / 4 |',
        '|---|---|---|---|---|',
        '| l.0 | 1.250 | 0.188 | 0.950 | 0.750 / 0.250 / 0.000 |',
        '| l.1 | 2.000 | 0.5 | 0.850 | 0.500 / 0.000 / 0.500 |',
        '| all PAD pixels | 1.500 | 0.25 | 0.900 | |']
    assert blocks[1].splitlines()[0] == \
        '| PAD layer, over 2 seeds | σ²(d) | chosen 1 / 2 / 4 |'
    assert blocks[1].splitlines()[2] == (
        '| l.0 | 0.100 ± 0.141 | 0.750 ± 0.354 / 0.250 ± 0.354 / '
        '0.000 ± 0.000 |')
    assert blocks[1].splitlines()[-1] == '| mIoU | 90.00 ± 1.41 | |'
    assert blocks[2].splitlines() == [
        '| pixel (x, y) | RF positions, PAD | RF positions, regular |',
        '|---|---|---|', '| (4, 2) | 63 | 63 |', '| (8, 9) | 109 | 56 |']
    assert blocks[3].splitlines()[2:] == ['| PAD | 0.731 |',
                                          '| regular | 0.720 |']


def test_optional_files_may_be_missing(out):
    for f in ('rf/rf.json', 'activation/activation.json'):
        (out / f).unlink()
    s = learned_summary(str(out))  # and no sweep summary
    assert s['rf'] is s['activation'] is s['seeds'] is None
    assert len(learned_markdown(s).strip().split('\n\n')) == 1


def test_errors_name_what_is_missing(out, tmp_path):
    with pytest.raises(FileNotFoundError, match='stats/dilation_stats.json'):
        learned_summary(str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match="seeds='nowhere.json'"):
        learned_summary(str(out), 'nowhere.json')
    with pytest.raises(ValueError, match=r"config_name='other'.*"
                       r"\['pad_demo', 'vanilla'\]"):
        learned_summary(str(out), _seeds(out), config_name='other')
    sweep = json.loads((out / 'seeds.json').read_text())
    with pytest.raises(ValueError, match="config_name='vanilla'"):
        seed_spread(sweep, 'vanilla')  # no PAD statistics


def test_agreement_columns_with_the_right_dilation(out):
    stats = out / 'stats' / 'dilation_stats.json'
    data = json.loads(stats.read_text())
    for name, (a, c) in (('l.0', (0.5, 0.25)), ('l.1', (0.75, 0.25))):
        data['metrics'][f'pad/{name}/agree'] = a
        data['metrics'][f'pad/{name}/agree_const'] = c
    stats.write_text(json.dumps(data))
    s = learned_summary(str(out), _seeds(out))
    assert (s['layers'][1]['agree'], s['layers'][1]['agree_const']) == \
        (0.75, 0.25)
    rows = learned_markdown(s).split('\n\n')[0].splitlines()
    assert rows[0].endswith('| agreement with the right d | '
                            'constant choice |')
    assert rows[2].endswith('| 0.500 | 0.250 |')
    assert rows[-1] == '| all PAD pixels | 1.500 | 0.25 | 0.900 | | | |'
