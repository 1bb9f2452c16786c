"""Every config folder documents where it departs from the paper, and the
configs follow the paper where it is explicit."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from helpers.markdown import md_table
from pad_mm.models import parse_pad_cfg, parse_settings

FOLDERS = ['pad_fcn', 'pad_deeplabv3plus', 'pad_imagenet',
           'pad_finegrained', 'demo', 'demo_cls']
HEADER = '| Topic | Paper | These configs | Why |'


def _table(repo_root, folder):
    path = osp.join(repo_root, 'configs', folder, 'README.md')
    assert osp.isfile(path), path
    text = open(path).read()
    assert '## Deviations from the paper' in text
    section = text.split('## Deviations from the paper', 1)[1]
    section = section.split('\n## ', 1)[0]
    first = next(ln for ln in section.splitlines() if ln.startswith('|'))
    assert first == HEADER
    return md_table(section, 'Topic')[2:]


@pytest.mark.parametrize('folder', FOLDERS)
def test_readme_has_a_deviations_table(repo_root, folder):
    rows = _table(repo_root, folder)
    assert len(rows) >= 8
    for row in rows:
        assert len(row) == 4 and all(row), row  # what, paper, ours, why
    topics = ' '.join(r[0] for r in rows)
    assert 'tau schedule' in topics
    assert sum(r[0] == 'The method' for r in rows) == 6


def test_cityscapes_deeplab_uses_the_voc_scheme_lr(repo_root):
    # Table 8: "Follow deeplab VOC-2012 training scheme" for all DeepLabV3+
    for path in glob.glob(osp.join(repo_root, 'configs', 'pad_deeplabv3plus',
                                   '*cityscapes*.py')):
        cfg = Config.fromfile(path)
        assert cfg.optim_wrapper.optimizer.type == 'SGD', path
        assert cfg.optim_wrapper.optimizer.lr == 0.007, path


def test_table2_configs_differ_only_in_the_aggregation(repo_root):
    """Table 2 compares eqs. 3-5: the recurrent and gated configs state
    only the aggregation and get the same non-linear default f and initial
    margin as the Markov configs."""
    paths = glob.glob(osp.join(repo_root, 'configs', 'pad_*',
                               'pad-recurrent_*.py')) + glob.glob(
        osp.join(repo_root, 'configs', 'pad_*', 'pad-gated_*.py'))
    assert len(paths) == 4
    for path in paths:
        pad_cfg = Config.fromfile(path).model.backbone.pad_cfg
        assert 'act_cfg' not in pad_cfg and 'init_margin' not in pad_cfg, \
            path
        (chain, ) = parse_pad_cfg(pad_cfg.to_dict())
        markov = parse_settings(dict(aggregation='markov'))
        assert chain.settings.aggregation in ('recurrent', 'gated')
        assert chain.settings.act_cfg == markov.act_cfg == dict(
            type='ScaledTanh'), path
        assert chain.settings.init_margin == markov.init_margin, path
