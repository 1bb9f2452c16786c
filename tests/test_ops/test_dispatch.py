"""impl='auto' never runs an implementation that has not passed its
self-check in this process, and never makes a run wrong (fake kernels on
the CPU: raising, wrong, slow, failing in backward)."""
import logging
import time
import warnings

import pytest
import torch

import pad_mm.ops.dispatch as dispatch
from pad_mm.ops import (dispatcher, pad_conv2d, pad_conv2d_hard,
                        pad_conv2d_hard_reference, pad_conv2d_reference,
                        select_impl)

DIL = (1, 2, 4)


@pytest.fixture(autouse=True)
def registry(monkeypatch):
    """A private copy of the registries (auto: the fake, else the
    reference) and an empty dispatch state."""
    monkeypatch.delenv('PAD_MM_IMPL', raising=False)
    with dispatcher.isolated():
        dispatcher.set_auto_order(['reference'])
        dispatcher.set_auto_order(['reference'], hard=True)
        yield


def _register(fn, hard=False):
    dispatcher.register('fake', fn, lambda *a: True, priority=0,
                        prefer=lambda *a: True, hard=hard, checked=True)


def _inputs(c=32, size=(8, 8), dtype=torch.float32, grad=False):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, c, *size, generator=g, dtype=dtype)
    w = (torch.randn(c, c, 3, 3, generator=g) / (3 * c**0.5)).to(dtype)
    b = torch.randn(c, generator=g, dtype=dtype)
    p = torch.softmax(torch.randn(2, 3, *size, generator=g), 1).to(dtype)
    if grad:
        for t in (x, w, b, p):
            t.requires_grad_()
    return x, w, b, p


def _fast_timer(monkeypatch, calls=None):
    """The fake measures 10x faster than the reference."""

    def fake_time(name, run, device):
        run()
        if calls is not None:
            calls.append(name)
        return 1.0 if name == 'reference' else 0.1

    monkeypatch.setattr(dispatcher, 'time_call', fake_time)


class Spy:
    """A correct fake that records whether it ran inside a self-check."""

    def __init__(self, fn=pad_conv2d_reference):
        self.fn = fn
        self.in_check = False
        self.calls = []

    def __call__(self, *args):
        self.calls.append('check' if self.in_check else 'run')
        return self.fn(*args)


def _spy_self_check(monkeypatch, spy, events):
    real = dispatch.self_check

    def wrapped(fn, device, dtype, **kw):
        events.append(('check', str(dtype)))
        spy.in_check = True
        try:
            return real(fn, device, dtype, **kw)
        finally:
            spy.in_check = False

    monkeypatch.setattr(dispatcher, 'run_self_check', wrapped)


def _no_fake_warnings(record):
    return [w for w in record if 'fake' in str(w.message)]


def test_raising_kernel_is_never_picked_and_warns_once():
    calls = []

    def boom(*args):
        calls.append(1)
        raise RuntimeError('boom: no kernel image')

    _register(boom)
    x, w, b, p = _inputs()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter('always')
        out = pad_conv2d(x, w, b, p, DIL)
        assert select_impl(x, w, p, DIL, 1, 1) == 'reference'
        out2 = pad_conv2d(x, w, b, p, DIL)
    torch.testing.assert_close(out, pad_conv2d_reference(x, w, b, p, DIL))
    torch.testing.assert_close(out2, out)
    (warn, ) = _no_fake_warnings(rec)
    msg = str(warn.message)
    assert "'fake' (soft) failed its self-check on cpu torch.float32" in msg
    assert 'boom: no kernel image' in msg and 'reference' in msg
    assert len(calls) == 1  # only the self-check ran it, once
    (check, ) = dispatch.dispatch_report()['checks']
    assert check['impl'] == 'fake' and not check['passed']
    assert 'boom' in check['error']


def test_wrong_values_fail_the_self_check():

    def off_by_a_bit(x, w, b, p, dil, stride, groups):
        out = pad_conv2d_reference(x, w, b, p, dil, stride, groups)
        return out + 0.05 * out.detach().abs().max()

    _register(off_by_a_bit)
    x, w, b, p = _inputs()
    with pytest.warns(RuntimeWarning, match=r"'fake' \(soft\) failed its "
                      r'self-check.*s1/out: max relative error'):
        out = pad_conv2d(x, w, b, p, DIL)
    torch.testing.assert_close(out, pad_conv2d_reference(x, w, b, p, DIL))
    assert select_impl(x, w, p, DIL, 1, 1) == 'reference'


def test_wrong_gradient_only_fails_the_self_check():

    class WrongGrad(torch.autograd.Function):

        @staticmethod
        def forward(ctx, w):
            return w.clone()

        @staticmethod
        def backward(ctx, g):
            return 2 * g  # wrong

    def fn(x, w, b, p, dil, stride, groups):
        return pad_conv2d_reference(x, WrongGrad.apply(w), b, p, dil, stride,
                                    groups)

    _register(fn)
    x, w, b, p = _inputs()
    with pytest.warns(RuntimeWarning, match='s1/grad_weight'):
        assert select_impl(x, w, p, DIL, 1, 1) == 'reference'


def test_slow_kernel_passes_the_check_but_is_not_picked():

    def slow(*args):
        time.sleep(0.02)
        return pad_conv2d_reference(*args)

    _register(slow)
    x, w, b, p = _inputs()
    assert select_impl(x, w, p, DIL, 1, 1) == 'reference'
    report = dispatch.dispatch_report()
    (check, ) = report['checks']
    assert check['passed'] and check['max_rel_err']['s2/grad_probs'] < 1e-5
    (choice, ) = report['choices']
    assert not choice['picked']
    assert choice['impl_ms'] > choice['reference_ms']
    assert choice['impl_ms'] >= 20


def test_picked_only_after_its_check_and_timing(monkeypatch, caplog):
    spy, events = Spy(), []
    _register(spy)
    _spy_self_check(monkeypatch, spy, events)
    timed = []
    _fast_timer(monkeypatch, timed)
    x, w, b, p = _inputs()
    with caplog.at_level(logging.INFO, logger='pad_mm.ops'):
        for _ in range(3):
            out = pad_conv2d(x, w, b, p, DIL)
    torch.testing.assert_close(out, pad_conv2d_reference(x, w, b, p, DIL))
    assert events == [('check', 'torch.float32')]
    first_run = spy.calls.index('run')
    assert 'check' in spy.calls[:first_run]  # checked before any real run
    assert timed == ['fake', 'reference']  # one timing per shape class
    assert spy.calls[-3:] == ['run'] * 3
    logs = [r.getMessage() for r in caplog.records]
    assert sum('self-check passed: fake (soft) on cpu' in m
               for m in logs) == 1
    assert sum('fake picked for' in m for m in logs) == 1
    # another shape class: timed again, not checked again
    x2, w2, b2, p2 = _inputs(c=16, size=(20, 20))
    assert select_impl(x2, w2, p2, DIL, 1, 1) == 'fake'
    assert events == [('check', 'torch.float32')]
    assert timed[2:] == ['fake', 'reference']
    # another dtype: a new self-check first
    xd, wd, bd, pd = _inputs(dtype=torch.float64)
    assert select_impl(xd, wd, pd, DIL, 1, 1) == 'fake'
    assert events[-1] == ('check', 'torch.float64')


def test_never_picks_an_unverified_kernel(monkeypatch):
    """Over many shapes, dtypes and modes, every run of the fake outside
    its self-check happens after a passed check for that dtype; a fake
    whose check fails never runs outside it."""
    for check_passes in (True, False):
        dispatcher.reset()
        spy = Spy(pad_conv2d_reference if check_passes else
                  lambda *a: pad_conv2d_reference(*a) * 1.5)
        _register(spy)
        _spy_self_check(monkeypatch, spy, [])
        _fast_timer(monkeypatch)
        seen = []

        def run_and_check(x, w, b, p, stride):
            before = len(spy.calls)
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                name = select_impl(x, w, p, DIL, stride, 1)
                pad_conv2d(x, w, b, p, DIL, stride)
            runs = spy.calls[before:].count('run')
            if runs or name == 'fake':
                assert dispatcher.check_status('fake', x, w, p, DIL, stride,
                                               1) == 'passed'
            seen.append(name)

        for dtype in (torch.float32, torch.float64):
            for c, size in ((8, (5, 7)), (32, (9, 9)), (24, (16, 3))):
                x, w, b, p = _inputs(c, size, dtype)
                run_and_check(x, w, b, p, 1)
                xs = x[:, :, ::1]
                ps = p[:, :, ::2, ::2].contiguous()
                run_and_check(xs, w, b, ps, 2)
        if check_passes:
            assert set(seen) == {'fake'}
        else:
            assert set(seen) == {'reference'}
            assert 'run' not in spy.calls


class ArmedBackward(torch.autograd.Function):
    armed = False

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        if ArmedBackward.armed:
            raise RuntimeError('no kernel image is available in backward')
        return g


def test_backward_failure_recomputes_through_the_reference(monkeypatch):

    def fn(x, w, b, p, dil, stride, groups):
        return pad_conv2d_reference(ArmedBackward.apply(x), w, b, p, dil,
                                    stride, groups)

    _register(fn)
    _fast_timer(monkeypatch)
    x, w, b, p = _inputs(dtype=torch.float64, grad=True)
    assert select_impl(x, w, p, DIL, 1, 1) == 'fake'
    monkeypatch.setattr(ArmedBackward, 'armed', True)
    out = pad_conv2d(x, w, b, p, DIL)
    go = torch.randn_like(out)
    with pytest.warns(RuntimeWarning, match=r"'fake' \(soft\) failed its "
                      r'backward.*no kernel image is available'):
        grads = torch.autograd.grad(out, (x, w, b, p), go)
    ref = pad_conv2d_reference(x, w, b, p, DIL)
    for a, e in zip(grads, torch.autograd.grad(ref, (x, w, b, p), go)):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)
    assert select_impl(x, w, p, DIL, 1, 1) == 'reference'


def test_forward_failure_after_the_check_falls_back(monkeypatch):
    state = dict(armed=False)

    def fn(*args):
        if state['armed']:
            raise RuntimeError('out of resources: shared memory')
        return pad_conv2d_reference(*args)

    _register(fn)
    _fast_timer(monkeypatch)
    x, w, b, p = _inputs()
    assert select_impl(x, w, p, DIL, 1, 1) == 'fake'
    state['armed'] = True
    for grad in (False, True):
        leaves = [t.clone().requires_grad_(grad) for t in (x, w, b, p)]
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter('always')
            out = pad_conv2d(*leaves, DIL)
        torch.testing.assert_close(out,
                                   pad_conv2d_reference(x, w, b, p, DIL))
        assert len(_no_fake_warnings(rec)) == (0 if grad else 1)
    assert select_impl(x, w, p, DIL, 1, 1) == 'reference'


def test_hard_family_is_checked_separately(monkeypatch):

    def boom(*args):
        raise RuntimeError('hard kernel broken')

    _register(boom, hard=True)
    _register(Spy())
    _fast_timer(monkeypatch)
    x, w, b, p = _inputs()
    index = p.argmax(1)
    with pytest.warns(RuntimeWarning, match=r"'fake' \(hard\) failed"):
        out = pad_conv2d_hard(x, w, b, index, DIL)
    torch.testing.assert_close(
        out, pad_conv2d_hard_reference(x, w, b, index, DIL))
    assert select_impl(x, w, index, DIL, 1, 1, hard=True) == 'reference'
    assert select_impl(x, w, p, DIL, 1, 1) == 'fake'


def test_env_var_forces_the_choice(monkeypatch):
    spy = Spy()
    _register(spy)
    _fast_timer(monkeypatch)
    x, w, b, p = _inputs()
    monkeypatch.setenv('PAD_MM_IMPL', 'reference')
    assert select_impl(x, w, p, DIL, 1, 1) == 'reference'
    pad_conv2d(x, w, b, p, DIL)
    assert spy.calls == []  # nothing checked or run
    monkeypatch.setenv('PAD_MM_IMPL', 'fake')
    assert select_impl(x, w, p, DIL, 1, 1) == 'fake'
    assert dispatch.dispatch_report()['checks'] == []  # forced: no check
    # an explicit impl wins over the environment
    assert select_impl(x, w, p, DIL, 1, 1, impl='im2col') == 'im2col'
    monkeypatch.setenv('PAD_MM_IMPL', 'auto')
    assert select_impl(x, w, p, DIL, 1, 1) == 'fake'  # after its check
    monkeypatch.setenv('PAD_MM_IMPL', 'cudnn')
    with pytest.raises(ValueError, match=r"PAD_MM_IMPL must be one of "
                       r".*'reference'.*got 'cudnn'"):
        pad_conv2d(x, w, b, p, DIL)
    monkeypatch.setenv('PAD_MM_IMPL', 'triton')
    if not dispatcher.entry('triton').supports(x, w, p, DIL, 1, 1):
        with pytest.raises(ValueError,
                           match="PAD_MM_IMPL='triton' does not support"):
            pad_conv2d(x, w, b, p, DIL)


def test_self_check_catches_a_wrong_tile_edge():
    """A kernel that drops the last channel tile (C_out 96 > a 64 tile) is
    caught: the check crosses the tile sizes."""

    def drops_tail(x, w, b, p, dil, stride, groups):
        out = pad_conv2d_reference(x, w, b, p, dil, stride, groups)
        keep = torch.ones(out.shape[1], dtype=out.dtype)
        keep[64:] = 0
        return out * keep.view(1, -1, 1, 1)

    with pytest.raises(dispatch.SelfCheckError, match='s1/out'):
        dispatch.self_check(drops_tail, 'cpu', torch.float32)
    errors = dispatch.self_check(pad_conv2d_reference, 'cpu',
                                 torch.bfloat16)
    assert set(errors) == {f's{s}/{n}' for s in (1, 2) for n in (
        'out', 'grad_input', 'grad_weight', 'grad_bias', 'grad_probs')}
    assert max(errors.values()) < dispatch.CHECK_TOL[torch.bfloat16]
    # the RNG of the run is not touched
    torch.manual_seed(3)
    a = torch.rand(3)
    torch.manual_seed(3)
    dispatch.self_check(pad_conv2d_hard_reference, 'cpu', torch.float32,
                        hard=True)
    torch.testing.assert_close(torch.rand(3), a)


def test_first_call_inside_inference_mode_is_checked_properly(monkeypatch):
    _register(Spy())
    _fast_timer(monkeypatch)
    x, w, b, p = _inputs()
    with torch.inference_mode():
        out = pad_conv2d(x, w, b, p, DIL)
    torch.testing.assert_close(out, pad_conv2d_reference(x, w, b, p, DIL))
    (check, ) = dispatch.dispatch_report()['checks']
    assert check['passed'], check
    assert select_impl(x, w, p, DIL, 1, 1) == 'fake'


def test_triton_self_check_runs_the_call_on_both_backward_paths():
    """The Triton entry's self-check runs the call's case as made, then
    with the backward's buffer path one image per chunk, then with its
    GEMM path (the second fixed case takes the first)."""
    from pad_mm.ops import triton_pad
    from pad_mm.ops.selfcheck import check_spec
    seen = []

    def spy(*args):
        seen.append((triton_pad.bwd_input_path_current(),
                     triton_pad.bwd_buffer_bytes()))
        return pad_conv2d_reference(*args)

    x = torch.randn(2, 32, 8, 8)
    w = torch.randn(32, 32, 3, 3)
    p = torch.softmax(torch.randn(2, 3, 8, 8), 1)
    errors = dispatch.self_check(
        spy, 'cpu', torch.float32, spec=check_spec(x, w, p, DIL, 1, 1),
        context=dispatcher.entry('triton').check_context)
    assert {k.split('/')[0] for k in errors} == {
        's1', 's2', 'call', 'call.ctx1', 'call.ctx2'}
    default = triton_pad.bwd_buffer_bytes()
    assert seen == [('auto', default), ('buffer', 1), ('auto', default),
                    ('buffer', 1), ('gemm', 1)]
