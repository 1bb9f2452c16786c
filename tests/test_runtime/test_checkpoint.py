"""Checkpoints: vanilla mmseg/mmpretrain checkpoints load into PAD models
with one clear line about the PAD parameters; PAD checkpoints load back
strictly; the state-dict key layout is frozen."""
import copy
import logging

import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import pad_mm.cls  # noqa: F401  (registers pad_mm for mmpretrain)
import pad_mm.seg  # noqa: F401  (and for mmseg)
from pad_mm.models import PADConv2d, link_chain
from pad_mm.models.layers import pad_conv as pad_conv_module

from helpers.training import tiny_demo_cfg


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def _logger():
    logger = logging.getLogger(f'pad_ckpt_test_{id(object())}')
    logger.propagate = False
    handler = _Records()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return logger, handler


def _seg_models(repo_root, tmp_path):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    pad_cfg = tiny_demo_cfg(repo_root, tmp_path / 'w', tmp_path / 'd',
                            slim=True).model
    vanilla_cfg = copy.deepcopy(pad_cfg)
    backbone = vanilla_cfg.backbone
    backbone.type = backbone.pop('base_type')
    backbone.pop('pad_cfg')
    torch.manual_seed(0)
    return MODELS.build(vanilla_cfg), MODELS.build(pad_cfg)


def _cls_models():
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    base = dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=18, base_channels=8,
                      stem_channels=8),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=64))
    pad = copy.deepcopy(base)
    pad['backbone'] = dict(pad['backbone'], type='PADBackbone',
                           base_type='ResNet',
                           pad_cfg=dict(layers='layer4.*.conv2',
                                        aggregation='recurrent'))
    torch.manual_seed(0)
    return MODELS.build(base), MODELS.build(pad)


def _prior_keys(model):
    return sorted(k for k in model.state_dict() if '.prior.' in k)


def _forward(model, x):
    model.eval()
    with torch.no_grad():
        return model(x, mode='tensor')


@pytest.mark.parametrize('task', ['seg', 'cls'])
def test_vanilla_checkpoint_into_pad_model_one_line(repo_root, tmp_path,
                                                    task):
    vanilla, pad = _seg_models(repo_root, tmp_path) if task == 'seg' else \
        _cls_models()
    vanilla.init_weights()
    vanilla.train()
    with torch.no_grad():  # BN statistics that are not the identity
        vanilla(torch.randn(4, 3, 32, 32), mode='tensor')
    path = tmp_path / 'vanilla.pth'
    torch.save({'state_dict': vanilla.state_dict(), 'meta': {}}, path)
    prior_keys = _prior_keys(pad)
    assert prior_keys and not set(prior_keys) & set(vanilla.state_dict())
    # priors, tau and the dilation options stay the PAD model's own
    before = {k: v.clone() for k, v in pad.state_dict().items()
              if k in prior_keys or k.endswith(('.pad_tau', '.pad_dilations'))}

    logger, handler = _logger()
    load_checkpoint(pad, str(path), map_location='cpu', logger=logger)
    # besides mmengine's info line 'Loads checkpoint by ...': one warning
    messages = [r.getMessage() for r in handler.records
                if r.levelno >= logging.WARNING]
    assert len(messages) == 1, messages
    line = messages[0]
    assert '\n' not in line
    n_layers = len({k.rsplit('.prior.', 1)[0] for k in prior_keys})
    assert f'{n_layers} PAD layer(s) ({len(prior_keys)} tensors' in line
    assert 'vanilla checkpoint' in line
    assert 'missing keys' not in line
    # the priors keep their initialisation, everything else is loaded
    for k, v in pad.state_dict().items():
        if k in before:
            assert torch.equal(v, before[k])
        else:
            assert torch.equal(v, vanilla.state_dict()[k]), k
    # and the freshly converted model equals the vanilla one (hard eval)
    x = torch.randn(2, 3, 32, 32)
    for a, b in zip(_forward(vanilla, x), _forward(pad, x)):
        torch.testing.assert_close(a, b)


def test_other_mismatches_are_still_reported(repo_root, tmp_path):
    vanilla, pad = _seg_models(repo_root, tmp_path)
    state = vanilla.state_dict()
    state.pop('decode_head.conv_seg.weight')
    path = tmp_path / 'partial.pth'
    torch.save({'state_dict': state}, path)
    logger, handler = _logger()
    load_checkpoint(pad, str(path), map_location='cpu', logger=logger)
    text = '\n'.join(r.getMessage() for r in handler.records)
    assert 'decode_head.conv_seg.weight' in text  # mmengine's report
    assert '.prior.' not in text.split('PAD:')[0]  # priors not in it
    with pytest.raises(RuntimeError, match='prior'):  # strict is strict
        load_checkpoint(pad, str(path), map_location='cpu', strict=True,
                        logger=logger)


def test_pad_checkpoint_loads_back_into_same_config(repo_root, tmp_path):
    _, pad = _seg_models(repo_root, tmp_path)
    torch.manual_seed(3)
    with torch.no_grad():  # trained-looking priors
        for k, v in pad.state_dict().items():
            if '.prior.' in k:
                v.normal_()
    path = tmp_path / 'pad.pth'
    torch.save({'state_dict': pad.state_dict()}, path)
    _, again = _seg_models(repo_root, tmp_path)
    logger, handler = _logger()
    load_checkpoint(again, str(path), map_location='cpu', strict=True,
                    logger=logger)
    assert [r for r in handler.records if r.levelno >= logging.WARNING] \
        == []
    for k, v in pad.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(_forward(pad, x), _forward(again, x))


def test_runner_load_from_vanilla_checkpoint(repo_root, tmp_path):
    """The Runner's load_from path (what users do) gives the same line."""
    from pad_mm.apis.runner import build_runner
    vanilla, _ = _seg_models(repo_root, tmp_path)
    path = tmp_path / 'vanilla.pth'
    torch.save({'state_dict': vanilla.state_dict(), 'meta': {}}, path)
    cfg = tiny_demo_cfg(repo_root, tmp_path / 'w', tmp_path / 'data',
                        slim=True, max_iters=1)
    cfg.load_from = str(path)
    runner = build_runner(cfg)
    runner.load_or_resume()
    log = open(runner.log_dir + f'/{runner.timestamp}.log').read()
    assert log.count('PAD: the checkpoint has no PAD prior parameters') == 1
    assert 'missing keys in source state_dict' not in log


# ----------------------------------------------------- frozen key layout
C, D = 8, 3
LAYOUT = {
    'markov': {
        'weight': (16, C, 3, 3), 'bias': (16, ),
        'prior.input_weight': (D, C, 1, 1), 'prior.input_bias': (D, ),
        'prior.act.log_scale': (), 'pad_tau': (), 'pad_dilations': (D, ),
    },
    'recurrent': {
        'weight': (16, C, 3, 3), 'bias': (16, ),
        'prior.input_weight': (D, C, 1, 1), 'prior.input_bias': (D, ),
        'prior.hidden_weight': (D, D, 1, 1), 'prior.hidden_bias': (D, ),
        'prior.act.log_scale': (), 'pad_tau': (), 'pad_dilations': (D, ),
    },
    'gated': {
        'weight': (16, C, 3, 3), 'bias': (16, ),
        'prior.input_weight': (D, C, 1, 1), 'prior.input_bias': (D, ),
        'prior.hidden_weight': (D, D, 1, 1), 'prior.hidden_bias': (D, ),
        'prior.gate_input_weight': (D, C, 1, 1), 'prior.gate_input_bias':
        (D, ), 'prior.gate_hidden_weight': (D, D, 1, 1),
        'prior.act.log_scale': (), 'pad_tau': (), 'pad_dilations': (D, ),
    },
}


@pytest.mark.parametrize('aggregation', sorted(LAYOUT))
def test_state_dict_key_layout_is_frozen(aggregation):
    """Checkpoints of this version must load in future versions: the keys
    and shapes of a PAD layer are part of the public contract (documented
    in pad_mm/models/layers/pad_conv.py)."""
    layer = PADConv2d(C, 16, 3, padding=1, dilations=(1, 2, 4),
                      aggregation=aggregation)
    if aggregation != 'markov':
        link_chain([layer])
    got = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert got == LAYOUT[aggregation]
    doc = pad_conv_module.__doc__
    for key in LAYOUT[aggregation]:
        assert key in doc, f'{key} is not documented'
    # a plain (non-adaptive) PADConv has exactly nn.Conv2d's keys
    plain = PADConv2d(C, 16, 1)
    assert set(plain.state_dict()) == {'weight', 'bias'}


def test_full_model_prior_key_names(repo_root, tmp_path):
    _, pad = _seg_models(repo_root, tmp_path)
    assert _prior_keys(pad) == sorted(
        f'backbone.layer4.{b}.conv{c}.prior.{p}' for b in (0, 1)
        for c in (1, 2)
        for p in ('input_weight', 'input_bias', 'act.log_scale'))
