"""Pre-flight validation: every bad config field / CLI argument gives one
error naming the field, the value and what is allowed, before training
starts."""
import os
import os.path as osp

import pytest
from mmengine.registry import init_default_scope

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.apis.validate import (PADConfigError, PADConfigFileError,
                                     validate_config)

from helpers.tools import load_tool
from helpers.training import tiny_demo_cfg

# helpers.training registers RelReversedNet / RelBranchNet

NAN = float('nan')


def _pad(cfg):
    return cfg.model.backbone.pad_cfg


def _set(path, value):
    """A mutation setting a dotted path (``[i]`` for list items)."""

    def mutate(cfg, tmp):
        node = cfg
        parts = path.split('.')
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        last = parts[-1]
        node[int(last) if last.isdigit() else last] = value(tmp) if \
            callable(value) else value

    return mutate


def _vanilla_data(tmp, layout='ok'):
    """A real mmseg-layout data root (no generator) in several states."""
    from pad_mm.datasets import make_textures_dataset
    root = tmp / f'real_{layout}'
    if not root.exists():
        make_textures_dataset(str(root), seed=3, num_train=2, num_val=1,
                              size=16)
        if layout == 'jpg_only':
            for f in (root / 'images' / 'train').iterdir():
                f.rename(f.with_suffix('.jpg'))
    return str(root)


def _plain_dataset(tmp, layout='ok', prefix=None):
    return dict(
        type='PADTexturesDataset', data_root=_vanilla_data(tmp, layout),
        data_prefix=prefix or dict(img_path='images/train',
                                   seg_map_path='annotations/train'),
        pipeline=[])


def _hook(**kw):
    return lambda cfg, tmp: cfg.custom_hooks.__setitem__(
        0, dict(type='PADTauHook', **kw))


def _add_pad_cfg_entry(**kw):
    return lambda cfg, tmp: cfg.model.backbone.__setitem__(
        'pad_cfg', [dict(_pad(cfg)), dict(kw)])


def _conv_cfg(**kw):
    return lambda cfg, tmp: cfg.model.backbone.__setitem__(
        'conv_cfg', dict(type='PADConv', **kw))


# (id, mutation, field, value fragment, allowed fragment)
CASES = [
    # dilations
    ('dilations-empty', _set('model.backbone.pad_cfg.dilations', ()),
     'pad_cfg.dilations', '()', 'non-empty'),
    ('dilations-negative', _set('model.backbone.pad_cfg.dilations', (1, -2)),
     'pad_cfg.dilations', '(1, -2)', 'positive ints'),
    ('dilations-zero', _set('model.backbone.pad_cfg.dilations', (0, 1)),
     'pad_cfg.dilations', '(0, 1)', 'positive ints'),
    ('dilations-duplicate', _set('model.backbone.pad_cfg.dilations',
                                 (1, 2, 2)),
     'pad_cfg.dilations', '(1, 2, 2)', 'distinct'),
    ('dilations-float', _set('model.backbone.pad_cfg.dilations', (1, 2.5)),
     'pad_cfg.dilations', '(1, 2.5)', 'ints'),
    ('dilations-str', _set('model.backbone.pad_cfg.dilations', '124'),
     'pad_cfg.dilations', "'124'", 'list/tuple'),
    ('dilations-bool', _set('model.backbone.pad_cfg.dilations', (True, 2)),
     'pad_cfg.dilations', '(True, 2)', 'ints'),
    # tau
    ('tau-zero', _set('model.backbone.pad_cfg.tau', 0.0),
     'pad_cfg.tau', '0.0', 'finite number > 0'),
    ('tau-negative', _set('model.backbone.pad_cfg.tau', -1),
     'pad_cfg.tau', '-1', 'finite number > 0'),
    ('tau-nan', _set('model.backbone.pad_cfg.tau', NAN),
     'pad_cfg.tau', 'nan', 'finite number > 0'),
    ('tau-inf', _set('model.backbone.pad_cfg.tau', float('inf')),
     'pad_cfg.tau', 'inf', 'finite number > 0'),
    ('tau-str', _set('model.backbone.pad_cfg.tau', '1.0'),
     'pad_cfg.tau', "'1.0'", 'finite number > 0'),
    ('hook-tau-start-zero', _hook(tau_start=0.0),
     'custom_hooks[0].tau_start', '0.0', 'finite number > 0'),
    ('hook-tau-end-nan', _hook(tau_end=NAN),
     'custom_hooks[0].tau_end', 'nan', 'finite number > 0'),
    ('hook-schedule', _hook(schedule='linear'),
     'custom_hooks[0].schedule', "'linear'", "'exp'"),
    ('hook-anneal-iters', _hook(anneal_iters=0),
     'custom_hooks[0].anneal_iters', '0', 'positive int'),
    ('hook-unknown-arg', _hook(tau_min=0.1),
     'custom_hooks[0].tau_min', '0.1', 'tau_start'),
    ('hook-unknown-type',
     lambda cfg, tmp: cfg.custom_hooks.insert(1, dict(type='PADTauHok')),
     'custom_hooks[1].type', "'PADTauHok'", 'registered hook'),
    # modes / aggregation / other PADConv arguments
    ('train-mode', _set('model.backbone.pad_cfg.train_mode', 'hard'),
     'pad_cfg.train_mode', "'hard'", "'gumbel_hard'"),
    ('eval-mode', _set('model.backbone.pad_cfg.eval_mode', 'argmax'),
     'pad_cfg.eval_mode', "'argmax'", "'soft'"),
    ('aggregation', _set('model.backbone.pad_cfg.aggregation', 'lstm'),
     'pad_cfg.aggregation', "'lstm'", "'gated'"),
    ('impl', _set('model.backbone.pad_cfg.impl', 'cuda_magic'),
     'pad_cfg.impl', "'cuda_magic'", "'reference'"),
    ('init-dilation', _set('model.backbone.pad_cfg.init_dilation', 3),
     'pad_cfg.init_dilation', '3', 'one of dilations'),
    ('init-margin', _set('model.backbone.pad_cfg.init_margin', -2.0),
     'pad_cfg.init_margin', '-2.0', 'finite number > 0'),
    ('act-cfg', _set('model.backbone.pad_cfg.act_cfg', dict(type='Swishy')),
     'pad_cfg.act_cfg.type', "'Swishy'", 'registered activation'),
    ('pad-cfg-unknown-key', _set('model.backbone.pad_cfg.dilation', (1, 2)),
     'pad_cfg.dilation', '(1, 2)', "'dilations'"),
    ('pad-cfg-empty-list', _set('model.backbone.pad_cfg', []),
     'model.backbone.pad_cfg', '[]', 'non-empty list'),
    ('conv-cfg-aggregation', _conv_cfg(aggregation='gated'),
     'conv_cfg.aggregation', "'gated'", "'markov'"),
    ('conv-cfg-dilations', _conv_cfg(dilations=(2, 2)),
     'conv_cfg.dilations', '(2, 2)', 'distinct'),
    # layer patterns and chains
    ('pattern-no-match', _set('model.backbone.pad_cfg.layers',
                              ['layer9.*.conv2']),
     'pad_cfg.layers', "'layer9.*.conv2'", 'layer1.0.conv1'),
    ('pattern-empty', _set('model.backbone.pad_cfg.layers', []),
     'pad_cfg.layers', '[]', 'non-empty'),
    ('pattern-duplicate', _set('model.backbone.pad_cfg.layers',
                               ['layer4.*.conv2', 'layer4.*.conv2']),
     'pad_cfg.layers', 'layer4.*.conv2', 'distinct'),
    ('pattern-1x1', _set('model.backbone.pad_cfg.layers',
                         ['layer4.0.downsample.0']),
     'pad_cfg.layers', "'layer4.0.downsample.0'", '3x3'),
    ('pattern-two-chains', _add_pad_cfg_entry(layers='layer4.1.conv2'),
     'pad_cfg[1].layers', "'layer4.1.conv2'", 'at most one chain'),
    ('chain-name-duplicate', _add_pad_cfg_entry(layers='layer3.*.conv2',
                                                name='layer4.*.conv1,'
                                                'layer4.*.conv2'),
     'pad_cfg[1].name', 'layer4', 'not used by another'),
    ('chain-wrong-order', _set('model.backbone', dict(
        type='PADBackbone', base_type='RelReversedNet',
        pad_cfg=dict(layers=['a', 'b'], aggregation='recurrent'))),
     'model.backbone.pad_cfg', "'layers': ['a', 'b']", 'listed (module) '
     'order'),
    ('chain-incompatible-shapes', _set('model.backbone', dict(
        type='PADBackbone', base_type='RelBranchNet',
        pad_cfg=dict(layers=['a', 'b'], aggregation='gated'))),
     'model.backbone.pad_cfg', "'layers': ['a', 'b']", 'one batch'),
    ('base-type', _set('model.backbone.base_type', 'ResNetV9'),
     'model.backbone.base_type', "'ResNetV9'", 'registered backbone'),
    # data
    ('data-root-missing',
     lambda cfg, tmp: cfg.train_dataloader.__setitem__(
         'dataset', dict(_plain_dataset(tmp), data_root=str(tmp / 'nope'))),
     'train_dataloader.dataset.data_root', 'nope', 'existing directory'),
    ('data-root-is-file',
     lambda cfg, tmp: (tmp / 'file.txt').write_text('x') and
     cfg.val_dataloader.__setitem__(
         'dataset', dict(_plain_dataset(tmp),
                         data_root=str(tmp / 'file.txt'))),
     'val_dataloader.dataset.data_root', 'file.txt', 'existing directory'),
    ('data-prefix-missing',
     lambda cfg, tmp: cfg.train_dataloader.__setitem__(
         'dataset', _plain_dataset(tmp, prefix=dict(
             img_path='imgs/train', seg_map_path='annotations/train'))),
     'train_dataloader.dataset.data_prefix.img_path', "'imgs/train'",
     'directory under data_root'),
    ('data-wrong-format',
     lambda cfg, tmp: cfg.train_dataloader.__setitem__(
         'dataset', _plain_dataset(tmp, 'jpg_only')),
     'train_dataloader.dataset.data_prefix.img_path', "'images/train'",
     '.png files'),
    ('generate-size', _set('train_dataloader.dataset.generate.size', 8),
     'train_dataloader.dataset.generate.size', '8', 'int >= 16'),
    ('generate-unknown', _set('train_dataloader.dataset.generate.sizes', 8),
     'train_dataloader.dataset.generate.sizes', '8', "'num_train'"),
    ('batch-size', _set('train_dataloader.batch_size', 0),
     'train_dataloader.batch_size', '0', 'int >= 1'),
    ('num-workers', _set('train_dataloader.num_workers', -1),
     'train_dataloader.num_workers', '-1', 'int >= 0'),
    # checkpoints / pretrained files
    ('load-from-missing', _set('load_from', lambda t: str(t / 'no.pth')),
     'load_from', 'no.pth', 'existing checkpoint'),
    ('pretrained-missing', _set('model.pretrained',
                                lambda t: str(t / 'r18.pth')),
     'model.pretrained', 'r18.pth', 'existing checkpoint'),
    ('init-cfg-missing', _set('model.backbone.init_cfg', lambda t: dict(
        type='Pretrained', checkpoint=str(t / 'bb.pth'))),
     'model.backbone.init_cfg.checkpoint', 'bb.pth', 'existing checkpoint'),
    # runtime
    ('max-iters', _set('train_cfg.max_iters', -5),
     'train_cfg.max_iters', '-5', 'int >= 1'),
    ('val-interval', _set('train_cfg.val_interval', 1.5),
     'train_cfg.val_interval', '1.5', 'int >= 1'),
    ('optim-wrapper', _set('optim_wrapper.type', 'FancyWrapper'),
     'optim_wrapper.type', "'FancyWrapper'", 'registered optimizer wrapper'),
    ('amp-dtype', lambda cfg, tmp: cfg.optim_wrapper.update(
        type='CPUAmpOptimWrapper', dtype='float8'),
     'optim_wrapper.dtype', "'float8'", "'bfloat16'"),
    ('seed', _set('randomness', dict(seed=-1)),
     'randomness.seed', '-1', 'int >= 0'),
    ('deterministic', _set('randomness', dict(seed=0, deterministic='yes')),
     'randomness.deterministic', "'yes'", 'True or False'),
    ('default-scope', _set('default_scope', 'mmdet'),
     'default_scope', "'mmdet'", "'mmseg'"),
    ('work-dir-is-file', lambda cfg, tmp: (tmp / 'wd').write_text('x') and
     cfg.__setitem__('work_dir', str(tmp / 'wd')),
     'work_dir', 'wd', 'directory'),
    ('launcher-env', _set('launcher', 'pytorch'),
     '--launcher', "'pytorch'", 'torch.distributed.run'),
]


def test_table_is_large_enough():
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.fixture
def good_cfg(repo_root, tmp_path):
    init_default_scope('mmseg')
    return tiny_demo_cfg(repo_root, tmp_path / 'w', tmp_path / 'data',
                         slim=True)


def test_good_config_passes(good_cfg):
    validate_config(good_cfg)  # no exception, model builds and runs


@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named(case, good_cfg, tmp_path, monkeypatch):
    name, mutate, field, value, allowed = case
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(var, raising=False)
    mutate(good_cfg, tmp_path)
    with pytest.raises(PADConfigError) as info:
        validate_config(good_cfg)
    err = info.value
    msg = str(err)
    assert field in err.field, (err.field, msg)
    assert value in msg, msg
    assert allowed in msg.split('allowed:')[-1], msg
    assert msg.count('\n') == 0  # one line
    if name.startswith(('data-root', 'data-prefix', 'data-wrong', 'load-',
                        'pretrained', 'init-cfg')):
        assert isinstance(err, (PADConfigFileError, FileNotFoundError))


# ------------------------------------------------------- CLI, end to end
def _load_tool(repo_root, name):
    return load_tool(repo_root, f'{name}.py')


@pytest.fixture
def cfg_file(repo_root, tmp_path):
    cfg = tiny_demo_cfg(repo_root, tmp_path / 'w', tmp_path / 'data',
                        slim=True)
    path = tmp_path / 'cfg.py'
    cfg.dump(str(path))
    return str(path)


@pytest.mark.parametrize('argv,field,allowed', [
    (['--cfg-options', 'model.backbone.pad_cfg.tau=0'],
     'model.backbone.pad_cfg.tau', 'finite number > 0'),
    (['--cfg-options', 'model.backbon.depth=34'],
     '--cfg-options model.backbon.depth', 'parents exist'),
    (['--cfg-options', 'model.backbone.pad_cfg.dilations=[1,2,2]'],
     'model.backbone.pad_cfg.dilations', 'distinct'),
    (['--work-dir', '{tmp}/afile'], '--work-dir', 'directory'),
    (['--launcher', 'pytorch'], '--launcher', 'torch.distributed.run'),
    # values, not only keys: DictAction makes this a list of one string,
    # which mmengine's visualizer then fails on with a TypeError
    (['--cfg-options',
      "visualizer.vis_backends=[dict(type='TensorboardVisBackend')]"],
     '--cfg-options visualizer.vis_backends', 'cannot build a dict'),
    # one sample per step: the ASPP image pool's BN sees a 1x1 map
    (['--cfg-options', 'train_dataloader.batch_size=1'],
     'train_dataloader.batch_size', 'batch size >= 2'),
])
def test_train_cli_fails_before_training(repo_root, tmp_path, cfg_file, argv,
                                         field, allowed, monkeypatch):
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / 'afile').write_text('x')
    train = _load_tool(repo_root, 'train')
    argv = [a.format(tmp=tmp_path) for a in argv]
    with pytest.raises(PADConfigError) as info:
        train.main([cfg_file] + argv)
    assert info.value.field == field
    assert allowed in str(info.value)
    # nothing was started: no work dir, logs or checkpoints
    assert not osp.exists(tmp_path / 'w')


def test_train_cli_missing_resume_and_bad_amp_dtype(repo_root, tmp_path,
                                                    cfg_file, capsys):
    train = _load_tool(repo_root, 'train')
    with pytest.raises(FileNotFoundError, match='--resume'):
        train.main([cfg_file, '--resume', str(tmp_path / 'none.pth')])
    with pytest.raises(SystemExit):
        train.main([cfg_file, '--amp', '--amp-dtype', 'float8'])
    err = capsys.readouterr().err
    assert '--amp-dtype' in err and "'bfloat16'" in err
    assert not osp.exists(tmp_path / 'w')


def test_test_cli_validates(repo_root, tmp_path, cfg_file):
    test = _load_tool(repo_root, 'test')
    with pytest.raises(PADConfigFileError) as info:
        test.main([cfg_file, str(tmp_path / 'missing.pth')])
    assert info.value.field == 'checkpoint'
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'')
    (tmp_path / 'out_file').write_text('x')
    with pytest.raises(PADConfigFileError) as info:
        test.main([cfg_file, str(ckpt), '--out', str(tmp_path / 'out_file')])
    assert info.value.field == '--out'
    with pytest.raises(PADConfigError) as info:
        test.main([cfg_file, str(ckpt), '--cfg-options',
                   'model.backbone.pad_cfg.eval_mode=argmax'])
    assert info.value.field == 'model.backbone.pad_cfg.eval_mode'
    assert os.listdir(tmp_path).count('w') == 0


def test_single_sample_bn_error_names_the_layer(good_cfg):
    good_cfg.train_dataloader.batch_size = 1
    with pytest.raises(PADConfigError) as info:
        validate_config(good_cfg)
    assert info.value.field == 'train_dataloader.batch_size'
    assert 'model.decode_head.image_pool' in str(info.value)
    assert '[1, ' in str(info.value)  # the input shape
    validate_config(good_cfg, 'test')  # a test run has no such limit


def test_cfg_options_suggested_form_passes(good_cfg):
    """The form the error suggests (the keys of an existing item) passes
    and sets the value."""
    import argparse

    from mmengine.config import DictAction

    from pad_mm.apis.validate import validate_cfg_options
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    opts = parser.parse_args([
        '--cfg-options',
        'visualizer.vis_backends.0.type=TensorboardVisBackend'
    ]).cfg_options
    validate_cfg_options(good_cfg, opts)
    good_cfg.merge_from_dict(opts)
    assert good_cfg.visualizer.vis_backends[0].type == \
        'TensorboardVisBackend'
