"""pad_mm.ops.gpu_check without a GPU: a section's case loop (each case
written when done, errors recorded and the next case run, the budget),
a section's status, the TF32 switch, and the plain-torch DeepLabV3+
against mmseg's model of the same config."""
import os.path as osp
import time

import pytest
import torch

from helpers.configs import load_config
from helpers.models import build_seg, numel

from pad_mm.ops import tf32_enabled
from pad_mm.ops.gpu_check import SECTION_NAMES, SECTIONS, TOTAL_BUDGET_S
from pad_mm.ops.gpu_check.cases import tf32
from pad_mm.ops.gpu_check.child import Context, run_cases
from pad_mm.ops.gpu_check.deeplab import DeepLabV3Plus, PADConv
from pad_mm.ops.gpu_check.record import (read_json, section_status,
                                         write_json)
from pad_mm.ops.gpu_check.report import markdown_summary

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def test_eight_sections_within_five_minutes_on_one_gpu():
    assert SECTION_NAMES == (
        'environment', 'compile', 'quick_correctness', 'speed', 'model',
        'memory', 'correctness_matrix', 'graphs')
    assert sum(s.budget_s for s in SECTIONS) <= TOTAL_BUDGET_S == 300


def _ctx(budget=600.0):
    return Context(torch.device('cpu'), True, 1, 0, time.time() + budget,
                   budget)


def _file(tmp_path):
    out = str(tmp_path / 'check.json')
    write_json(out, dict(sections=dict(speed=dict(cases=[]))))
    return out


def test_every_case_is_written_when_done_and_errors_do_not_stop(tmp_path):
    out = _file(tmp_path)
    seen = []

    def look():
        seen.append([c['name'] for c in read_json(out)['sections']['speed']
                     ['cases']])
        return dict(status='failed', value=2)

    def cases():
        yield 'a', lambda: dict(value=1)
        yield 'b', look
        yield 'c', lambda: 1 / 0
        yield 'd', lambda: dict(value=4)

    run_cases(_ctx(), out, 'speed', cases())
    entry = read_json(out)['sections']['speed']
    got = [(c['name'], c['status'], c.get('value')) for c in entry['cases']]
    assert got == [('a', 'passed', 1), ('b', 'failed', 2),
                   ('c', 'error', None), ('d', 'passed', 4)]
    assert seen == [['a']]  # 'a' was on disk before 'b' ran
    assert 'ZeroDivisionError' in entry['cases'][2]['error']
    assert entry['complete']
    assert section_status(entry['cases'], 0, False) == 'failed'


def test_cases_past_the_budget_are_skipped_not_run(tmp_path):
    out = _file(tmp_path)
    ran = []
    ctx = _ctx(10.0)
    ctx.deadline = time.time() - 1

    def cases():
        yield 'a', lambda: ran.append('a') or {}

    run_cases(ctx, out, 'speed', cases())
    (case, ) = read_json(out)['sections']['speed']['cases']
    assert case == dict(name='a', status='skipped', reason='budget',
                        elapsed_s=case['elapsed_s'])
    assert not ran


def test_injected_error_is_a_case_error(tmp_path):
    out = _file(tmp_path)
    run_cases(_ctx(), out, 'speed', iter([('a', dict), ('b', dict)]),
              inject='error')
    cases = read_json(out)['sections']['speed']['cases']
    assert [c['status'] for c in cases] == ['error', 'passed']
    assert 'injected failure' in cases[0]['error']


@pytest.mark.parametrize('cases,code,timed_out,expected', [
    ([{'status': 'passed'}, {'status': 'skipped'}], 0, False, 'passed'),
    ([{'status': 'passed'}, {'status': 'error'}], 0, False, 'failed'),
    ([{'status': 'passed'}], -6, False, 'failed'),
    ([{'status': 'passed'}], -9, True, 'timed_out'),
])
def test_section_status(cases, code, timed_out, expected):
    assert section_status(cases, code, timed_out) == expected


def test_tf32_switch_through_both_flags_restores_them():
    conv = getattr(torch.backends.cudnn, 'conv', None)
    if conv is None or not hasattr(conv, 'fp32_precision'):
        pytest.skip('torch without the fp32_precision API')
    names = [(torch.backends, 'fp32_precision'),
             (torch.backends.cudnn, 'fp32_precision'),
             (conv, 'fp32_precision'),
             (torch.backends.cudnn.rnn, 'fp32_precision')]
    before = [getattr(o, a) for o, a in names]
    with tf32('conv'):
        assert tf32_enabled()
        with tf32(None):  # nested: reading the legacy flag here raised
            assert not tf32_enabled()
        assert tf32_enabled()
    with tf32('legacy'):
        assert tf32_enabled()
    assert [getattr(o, a) for o, a in names] == before


def test_markdown_summary_counts_cases():
    data = dict(sections=dict(speed=dict(
        index=4, status='failed', wall_s=3.0, cases=[
            dict(name='s', status='passed', values_ok=True, **{
                m: dict(ratio_to_cudnn=dict(triton=1.5, reference=3.0,
                                            auto=1.0, **(
                                                dict(triton_gemm=1.7)
                                                if m == 'fwd_bwd' else {})))
                for m in ('fwd', 'fwd_bwd', 'hard_inference')}),
            dict(name='t', status='error')])))
    table = markdown_summary(data)
    assert '| 4 | speed | failed | 1 | 1 | 0 | 3.0 |' in table
    assert ('| s | 1.50x | 1.50x | 1.70x | 3.00x | 1.00x | 1.50x | 1.00x '
            '| ok |') in table


@pytest.mark.parametrize('pad', [False, True])
def test_plain_deeplab_matches_mmseg_model_of_the_config(pad):
    """Same parameter count as the model pad_mm's R101 Cityscapes config
    builds (vanilla; PAD: the prior's 1x1 conv and f's scale per PAD
    layer), and the same PAD dilations."""
    name = ('pad_' if pad else '') + \
        'deeplabv3plus_r101-d16_4xb2-80k_cityscapes-512x1024.py'
    cfg = load_config(osp.join(ROOT, 'configs', 'pad_deeplabv3plus', name))
    ref = build_seg(cfg.model, meta=not pad)  # PAD's prior init reads values
    with torch.device('meta'):
        ours = DeepLabV3Plus(pad)
    assert numel(ours) == numel(ref)
    if pad:
        got = [m.dilations for m in ours.modules()
               if isinstance(m, PADConv)]
        want = [tuple(m.abs_dilations) for m in ref.modules()
                if hasattr(m, 'abs_dilations') and m.adaptive]
        assert got == want == [(1, 2, 4), (2, 4, 8), (2, 4, 8)]


def test_plain_deeplab_output_shape_and_gradients():
    torch.manual_seed(0)
    net = DeepLabV3Plus(True, impl='reference', small=True).train()
    img = torch.randn(2, 3, 32, 64)
    out = net(img)
    assert out.shape == (2, 19, 32, 64)
    out.square().mean().backward()
    pads = [m for m in net.modules() if isinstance(m, PADConv)]
    assert len(pads) == 1
    assert pads[0].weight.grad.abs().sum() > 0
    assert pads[0].prior.weight.grad.abs().sum() > 0  # through the probs
    net.eval()
    with torch.no_grad():
        assert net(img).shape == (2, 19, 32, 64)  # hard inference
