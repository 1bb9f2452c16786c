"""The numbers the README, the docs (docs/advanced/evidence.md,
docs/advanced/ablation.md) and the demo metafiles state are the committed
sweep summaries' (docs/evidence_sweep/, docs/ablation/, docs/demo_seeds/,
docs/demo_cls_seeds/),
which tools/analysis_tools/sweep.py wrote: no figure typed by hand."""
import json
import os.path as osp
import re

import yaml

from helpers.markdown import md_table


def _json(repo_root, rel):
    with open(osp.join(repo_root, rel)) as f:
        return json.load(f)


EARLIER = '## Earlier setting'


def _summary_table(repo_root, folder):
    summary = open(osp.join(repo_root, 'docs', folder, 'summary.md')).read()
    return md_table(summary, 'config')


def _check_means(table, data):
    """The table's means and stds are the summary's values, rounded."""
    for row in table[2:]:
        conf = next(c for c in data['configs'] if c['name'] == row[0])
        mean, std = re.match(r'([\d.]+) ± ([\d.]+) \((\d+)\)',
                             row[1]).groups()[:2]
        assert float(mean) == round(conf['mean'], 2)
        assert float(std) == round(conf['std'], 2)


def test_docs_lead_with_the_evidence_sweep(repo_root):
    """docs/advanced/ablation.md and evidence.md open with the PAD-Evidence
    sweep's table (docs/evidence_sweep/, the setting that can show a
    difference) and its agreement table; the 2026-11 PAD-Textures table
    (docs/ablation/) follows, unchanged, under an "Earlier setting"
    heading that gives its date and caveat."""
    new = _summary_table(repo_root, 'evidence_sweep')
    old = _summary_table(repo_root, 'ablation')
    agreement = open(osp.join(repo_root, 'docs', 'evidence_sweep',
                              'evidence_table.md')).read()
    first_block = agreement.strip().split('\n\n')[0]
    agreement_rows = '\n'.join(ln for ln in first_block.splitlines()
                                if ln.startswith('|'))
    for name in ('ablation.md', 'evidence.md'):
        doc = open(osp.join(repo_root, 'docs', 'advanced', name)).read()
        assert md_table(doc, 'config') == new, name  # the first table
        assert agreement_rows in doc, name
        assert EARLIER in doc, name
        earlier = doc[doc.index(EARLIER):]
        assert '2026-11-29' in earlier.split('\n\n', 2)[1], name
        assert md_table(earlier, 'config') == old, name
        # the new table comes first, the earlier one only below its heading
        assert doc.index(agreement_rows) < doc.index(EARLIER), name
    _check_means(new, _json(repo_root, 'docs/evidence_sweep/summary.json'))
    data = _json(repo_root, 'docs/ablation/summary.json')
    assert len(data['configs']) == 8
    assert all(c['n'] >= 3 for c in data['configs'])
    _check_means(old, data)


def test_readme_states_the_evidence_sweep(repo_root):
    """The README's "Is it the pixel-wise adaptivity that helps?" states
    the PAD-Evidence sweep's table, not the earlier setting's."""
    readme = open(osp.join(repo_root, 'README.md')).read()
    section = readme[readme.index('### Is it the pixel-wise adaptivity'):]
    section = section[:section.index('\n## ')]
    assert md_table(section, 'config') == _summary_table(repo_root,
                                                         'evidence_sweep')
    old = _summary_table(repo_root, 'ablation')
    assert '\n'.join('| ' + ' | '.join(r) + ' |' for r in old[2:3]) \
        not in readme


def test_evidence_metafile_entries_state_the_sweep(repo_root):
    """Every evidence config of configs/demo/metafile.yml carries its
    sweep result (mean, std, seeds over PAD-Evidence), and the 2026-11
    ablation configs, whose sweep ran another schedule, carry none."""
    data = _json(repo_root, 'docs/evidence_sweep/summary.json')
    with open(osp.join(repo_root, 'configs', 'demo', 'metafile.yml')) as f:
        models = {m['Name']: m for m in yaml.safe_load(f)['Models']}
    for conf in data['configs']:
        model = models[conf['name']]
        assert model['Config'] == conf['config']
        (result, ) = model['Results']
        assert result['Task'] == 'Semantic Segmentation'
        assert result['Dataset'] == 'PAD-Evidence'
        metrics = result['Metrics']
        assert metrics['mIoU'] == round(conf['mean'], 2)
        assert metrics['mIoU std'] == round(conf['std'], 2)
        assert metrics['Seeds'] == conf['n'] == 3
    for name in ('fixed_d2', 'pad_markov', 'static_mixture'):
        assert 'Results' not in models[name]


def test_textures_demo_metafile_and_readme_state_the_seeded_means(
        repo_root):
    data = _json(repo_root, 'docs/demo_seeds/summary.json')
    assert data['runs_finished'] == data['runs_total']
    by_name = {c['name']: c for c in data['configs']}
    with open(osp.join(repo_root, 'configs', 'demo', 'metafile.yml')) as f:
        models = {m['Name']: m for m in yaml.safe_load(f)['Models']}
    readme = open(osp.join(repo_root, 'configs', 'demo',
                           'README.md')).read()
    for name in ('deeplabv3plus_r18_textures',
                 'pad_deeplabv3plus_r18_textures'):
        conf = by_name[name]
        assert conf['n'] >= 3
        (result, ) = models[name]['Results']
        assert result['Dataset'] == 'PAD-Textures'
        metrics = result['Metrics']
        assert metrics['mIoU'] == round(conf['mean'], 2)
        assert metrics['mIoU std'] == round(conf['std'], 2)
        assert metrics['Seeds'] == conf['n']
        assert (f"{conf['mean']:.2f} ± {conf['std']:.2f} ({conf['n']})"
                in readme)


CLS_SWEEP = ('tools/analysis_tools/sweep.py '
             'configs/demo_cls/resnet18_textures_cls.py '
             'configs/demo_cls/pad_resnet18_textures_cls.py --seeds 0 1 2 '
             '--work-dir work_dirs/demo_cls_seeds '
             '--baseline resnet18_textures_cls --jobs 1 --threads 1')


def test_cls_demo_readme_and_metafile_state_the_committed_sweep(repo_root):
    summary = open(osp.join(repo_root, 'docs', 'demo_cls_seeds',
                            'summary.md')).read()
    data = _json(repo_root, 'docs/demo_cls_seeds/summary.json')
    assert data['metric'] == 'accuracy/top1'
    assert data['runs_finished'] == data['runs_total'] == 6
    readme = open(osp.join(repo_root, 'configs', 'demo_cls',
                           'README.md')).read()
    assert CLS_SWEEP in readme  # the command that wrote the summary
    # the README's table is the summary's (mean ± std, paired Δ, σ²(d))
    assert md_table(readme, 'config') == md_table(summary, 'config')
    with open(osp.join(repo_root, 'configs', 'demo_cls',
                       'metafile.yml')) as f:
        models = {m['Name']: m for m in yaml.safe_load(f)['Models']}
    for conf in data['configs']:
        assert conf['n'] == 3
        (result, ) = models[conf['name']]['Results']
        assert result['Task'] == 'Image Classification'
        assert result['Dataset'] == 'PAD-Textures-Cls'
        metrics = result['Metrics']
        assert metrics['Top 1 Accuracy'] == round(conf['mean'], 2)
        assert metrics['Top 1 Accuracy std'] == round(conf['std'], 2)
        assert metrics['Seeds'] == conf['n']


def test_evidence_readme_tables_are_the_committed_sweep(repo_root):
    """configs/demo/evidence/README.md states the PAD-Evidence sweep's
    summary (docs/evidence_sweep/summary.md, written by sweep.py) and the
    output of evidence_table.py (docs/evidence_sweep/evidence_table.md)
    unchanged; the sweep is complete with three seeds per config."""
    readme = open(osp.join(repo_root, 'configs', 'demo', 'evidence',
                           'README.md')).read()
    summary = open(osp.join(repo_root, 'docs', 'evidence_sweep',
                            'summary.md')).read()
    table = open(osp.join(repo_root, 'docs', 'evidence_sweep',
                          'evidence_table.md')).read()
    expected = md_table(summary, 'config')
    header = '| ' + ' | '.join(expected[0]) + ' |'
    assert header in readme  # the summary's table, found by its header
    stated = md_table(readme[readme.index(header):], 'config')
    assert stated == expected
    for block in table.strip().split('\n\n'):
        rows = [ln for ln in block.splitlines() if ln.startswith('|')]
        if rows:
            assert '\n'.join(rows) in readme
    data = _json(repo_root, 'docs/evidence_sweep/summary.json')
    assert data['runs_finished'] == data['runs_total'] == 24
    assert len(data['configs']) == 8
    assert all(c['n'] == 3 for c in data['configs'])
    for conf in data['configs']:
        row = next(r for r in stated[2:] if r[0] == conf['name'])
        assert row[1] == f"{conf['mean']:.2f} ± {conf['std']:.2f} (3)"


def test_readme_main_job_states_the_evidence_sweep(repo_root):
    """The main job's table gives, for its two configs, the evidence
    sweep's mean ± std and paired Δ of their twins (evidence_vanilla,
    evidence_pad_markov: the same configs), and the metafile the same."""
    data = _json(repo_root, 'docs/evidence_sweep/summary.json')
    by_name = {c['name']: c for c in data['configs']}
    readme = open(osp.join(repo_root, 'README.md')).read()
    section = readme[readme.index('## The main job'):]
    section = section[:section.index('### Is it the pixel-wise')]
    rows = {r[1].split(']')[0].strip('['): r
            for r in md_table(section, 'model')[2:]}
    pair = next(p for p in data['paired'] if p['name'] ==
                'evidence_pad_markov' and p['baseline'] == 'evidence_vanilla')
    with open(osp.join(repo_root, 'configs', 'demo', 'metafile.yml')) as f:
        models = {m['Name']: m for m in yaml.safe_load(f)['Models']}
    for config, twin in (('fcn_patchnet_evidence.py', 'evidence_vanilla'),
                         ('pad_fcn_patchnet_evidence.py',
                          'evidence_pad_markov')):
        conf = by_name[twin]
        assert rows[config][4] == \
            f"{conf['mean']:.2f} ± {conf['std']:.2f} ({conf['n']})"
        (result, ) = models[config[:-3]]['Results']
        assert result['Metrics']['mIoU'] == round(conf['mean'], 2)
        assert result['Metrics']['Seeds'] == conf['n']
    assert rows['pad_fcn_patchnet_evidence.py'][5] == (
        f"{pair['mean']:+.2f} [{pair['ci_low']:.2f}, {pair['ci_high']:.2f}]")


WHAT_IT_LEARNED = ('bash tools/analysis_tools/what_it_learned.sh --seeds '
                   'docs/evidence_sweep/summary.json --seeds-config '
                   'evidence_pad_markov')


def test_what_it_learned_is_the_scripts_output(repo_root):
    """docs/user_guides/analysis_tools.md states the tables that
    what_it_learned.sh wrote (docs/what_it_learned/summary.md, copied by
    its --update-docs), and they are what learned_summary makes of the
    committed JSON files of the tools: no number typed by hand."""
    from pad_mm.evaluation.learned import learned_markdown, learned_summary
    folder = osp.join(repo_root, 'docs', 'what_it_learned')
    committed = open(osp.join(folder, 'summary.md')).read()
    summary = _json(repo_root, 'docs/what_it_learned/summary.json')
    name = summary['seeds']['name']
    assert name == 'evidence_pad_markov'
    # the spread is read from the committed sweep summary itself
    assert summary['seeds_source'] == 'docs/evidence_sweep/summary.json'
    seeds = osp.join(repo_root, summary['seeds_source'])
    assert learned_markdown(learned_summary(folder, seeds, name)) == \
        committed
    guide = open(osp.join(repo_root, 'docs', 'user_guides',
                          'analysis_tools.md')).read()
    assert WHAT_IT_LEARNED in guide
    blocks = committed.strip().split('\n\n')
    assert len(blocks) == 4  # statistics, seeds, RF, activation
    for block in blocks:
        assert block in guide
    stats = _json(repo_root, 'docs/what_it_learned/stats/dilation_stats.json')
    # the main job's own checkpoint, on its own config
    assert stats['config'] == \
        'configs/demo/evidence/pad_fcn_patchnet_evidence.py'
    assert stats['checkpoint'] == \
        'work_dirs/pad_fcn_patchnet_evidence/iter_2000.pth'
    assert f"(mIoU {stats['metrics']['mIoU']:.2f})" in guide
    # every path the tools wrote is relative to the repository
    for rel in ('dilation/000000_dilation.json', 'stats/dilation_stats.json',
                'rf/rf.json', 'activation/activation.json'):
        text = open(osp.join(folder, rel)).read()
        assert not re.search(r'"/[A-Za-z]', text), rel
