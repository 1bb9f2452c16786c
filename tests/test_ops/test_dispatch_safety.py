"""First contact safety of impl='auto' (issue 27, section 1), with fake
checked implementations on the CPU: an OOM is an OOM, a sticky device
error is not fallen back from, self-checks see NaN-filled memory and the
call's specialisation, auto leaves the reference only for a >= 10% win,
per shape class including N, memory format and weight dtype, and never
times per rank under torch.distributed."""
import warnings

import pytest
import torch

from pad_mm.ops import (FatalDeviceError, dispatcher, pad_conv2d,
                        pad_conv2d_reference, select_impl, selfcheck)

DIL = (1, 2, 4)


@pytest.fixture(autouse=True)
def registry(monkeypatch):
    monkeypatch.delenv('PAD_MM_IMPL', raising=False)
    with dispatcher.isolated():
        dispatcher.set_auto_order(['reference'])
        dispatcher.set_auto_order(['reference'], hard=True)
        yield


def _register(fn, hard=False):
    dispatcher.register('fake', fn, lambda *a: True, priority=0,
                        prefer=lambda *a: True, hard=hard, checked=True)


def _inputs(n=2, c=32, size=(8, 8), dtype=torch.float32, grad=False,
            k=3, d=3, stride=1):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, *size, generator=g, dtype=dtype)
    w = (torch.randn(c, c, k, k, generator=g) / (k * c**0.5)).to(dtype)
    b = torch.randn(c, generator=g, dtype=dtype)
    ho, wo = ((s - 1) // stride + 1 for s in size)
    p = torch.softmax(torch.randn(n, d, ho, wo, generator=g), 1).to(dtype)
    if grad:
        for t in (x, w, b, p):
            t.requires_grad_()
    return x, w, b, p


def _timer(monkeypatch, ratio, calls=None):
    """The fake measures ``ratio`` times the reference's time."""

    def fake_time(name, run, device):
        run()
        if calls is not None:
            calls.append(name)
        return 1.0 if name == 'reference' else ratio

    monkeypatch.setattr(dispatcher, 'time_call', fake_time)


class Armed:
    """A correct fake that raises ``error`` in forward (or backward) once
    armed, counting the reference's runs."""

    def __init__(self, error, where='forward'):
        self.error, self.where, self.armed = error, where, False

    def __call__(self, x, w, b, p, dil, stride, groups):
        if self.armed and self.where == 'forward':
            raise self.error
        if self.armed:
            x = _RaiseInBackward.apply(x, self.error)
        return pad_conv2d_reference(x, w, b, p, dil, stride, groups)


class _RaiseInBackward(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, error):
        ctx.error = error
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        raise ctx.error


def _count_reference(monkeypatch):
    runs = []
    ref = dispatcher.entry('reference')

    def counted(*args):
        runs.append(1)
        return ref.fn(*args)

    dispatcher.register('reference', counted)
    return runs


OOM = torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 2 GiB')


@pytest.mark.parametrize('where', ['forward', 'backward'])
def test_oom_is_raised_not_marked_and_not_recomputed(monkeypatch, where):
    fake = Armed(OOM, where)
    _register(fake)
    _timer(monkeypatch, 0.5)
    x, w, b, p = _inputs(grad=True)
    assert select_impl(x, w, p, DIL, 1, 1) == 'fake'
    runs = _count_reference(monkeypatch)
    fake.armed = True
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no "failed" warning either
        with pytest.raises(torch.OutOfMemoryError, match='out of memory'):
            out = pad_conv2d(x, w, b, p, DIL)
            out.sum().backward()
    assert runs == []  # nothing recomputed through the reference
    assert dispatcher.check_status('fake', x, w, p, DIL, 1, 1) == 'passed'
    fake.armed = False  # the next (smaller) batch runs the kernel again
    assert select_impl(x, w, p, DIL, 1, 1) == 'fake'


def test_oom_in_the_self_check_is_raised_and_not_marked():
    fake = Armed(OOM)
    fake.armed = True
    _register(fake)
    x, w, b, p = _inputs()
    with pytest.raises(torch.OutOfMemoryError):
        pad_conv2d(x, w, b, p, DIL)
    assert dispatcher.check_status('fake', x, w, p, DIL, 1, 1) is None


@pytest.mark.parametrize('where', ['forward', 'backward'])
@pytest.mark.parametrize('msg', [
    'CUDA error: an illegal memory access was encountered',
    'Triton Error [CUDA]: misaligned address',
    'CUDA error: unspecified launch failure'])
def test_sticky_device_error_is_raised_not_fallen_back(monkeypatch, where,
                                                       msg):
    fake = Armed(RuntimeError(msg), where)
    _register(fake)
    _timer(monkeypatch, 0.5)
    x, w, b, p = _inputs(grad=True)
    assert select_impl(x, w, p, DIL, 1, 1) == 'fake'
    runs = _count_reference(monkeypatch)
    fake.armed = True
    with pytest.raises(FatalDeviceError, match='PAD_MM_IMPL=reference') as e:
        out = pad_conv2d(x, w, b, p, DIL)
        out.sum().backward()
    assert msg in str(e.value) and str(e.value.__cause__) == msg
    assert runs == []


def test_self_check_sees_nan_filled_memory():
    """An implementation that leaves part of its torch.empty output
    unwritten must fail: the check runs with uninitialised memory NaN."""
    seen = []

    def partial(x, w, b, p, dil, stride, groups):
        seen.append(bool(torch.empty(64).isnan().all()))
        ref = pad_conv2d_reference(x, w, b, p, dil, stride, groups)
        out = torch.empty_like(ref)
        out[:, :64] = ref[:, :64]  # the last channel tile never written
        return out + 0 * ref  # gradients still flow

    with pytest.raises(selfcheck.SelfCheckError, match='s1/out'):
        selfcheck.self_check(partial, 'cpu', torch.float32)
    assert seen and all(seen)
    # and the setting is restored afterwards
    assert not torch.are_deterministic_algorithms_enabled()


def test_check_key_covers_k_dilations_stride_and_specialisations(
        monkeypatch):
    """A new self-check (with a 'call' case shaped like the call) for
    another k, number of dilations, stride, 16-divisibility of channels or
    sizes, memory format or alignment; none for a shape of the same
    class."""
    checks = []
    real = dispatcher.run_self_check

    def spy(fn, device, dtype, **kw):
        checks.append(kw['spec'])
        return real(fn, device, dtype, **kw)

    monkeypatch.setattr(dispatcher, 'run_self_check', spy)
    _register(pad_conv2d_reference)
    _timer(monkeypatch, 0.5)
    x, w, _, p = _inputs()

    def call(dil=DIL, s=1, **kw):
        x_, w_, _, p_ = _inputs(stride=s, d=len(dil), **kw)
        return x_, w_, p_, dil, s

    unaligned = torch.empty(x.numel() + 1)[1:].view_as(x).copy_(x)
    calls = [
        call(),  # checked
        call(size=(24, 8)),  # same class (24 like 8): no new check
        call(k=5),
        call(dil=(1, 2)),
        call(s=3),
        call(size=(16, 8)),  # H divisible by 16
        call(c=24),  # C not divisible by 16
        (x.contiguous(memory_format=torch.channels_last), w, p, DIL, 1),
        (unaligned, w, p, DIL, 1),  # input not 16-byte aligned
    ]
    for x_, w_, p_, dil, s in calls:
        assert select_impl(x_, w_, p_, dil, s, 1) == 'fake'
    assert len(checks) == len(calls) - 1
    specs = {c.key for c in checks}
    assert len(specs) == len(checks)
    k5 = checks[1]
    assert k5.k == 5 and k5.key[:3] == (5, 3, 1)
    assert checks[2].dilations == (1, 2) and checks[3].stride == 3
    assert checks[6].layout == 'channels_last'
    assert checks[7].offsets[0] == 1
    # every check ran the call's case too
    report = dispatcher.report()['checks']
    assert all('call/grad_probs' in c['max_rel_err'] for c in report)


def test_check_case_reproduces_the_production_specialisation():
    """ResNet-101 layer4 at OS8 (C=512, 64x128, N=8, channels_last, bf16)
    is checked on a small case with the same integer specialisations."""
    x = torch.empty(8, 512, 64, 128, dtype=torch.bfloat16, device='meta'
                    ).contiguous(memory_format=torch.channels_last)
    w = torch.empty(512, 512, 3, 3, dtype=torch.float32, device='meta')
    p = torch.empty(8, 3, 64, 128, device='meta')
    spec = selfcheck.check_spec(x, w, p, (4, 8, 16), 1, 1)
    assert spec.exact and spec.layout == 'channels_last'
    macs = spec.n * spec.c_in * spec.c_out * spec.size[0] * spec.size[1]
    assert macs < 8 * 512 * 512 * 64 * 128 / 100  # a small case
    assert spec.weight_dtype == torch.float32
    assert spec.dilations == (4, 8, 16)
    # a sliced (strided) input cannot be reproduced: not checkable
    xs = torch.empty(2, 32, 9, 16, device='meta')[..., ::2]
    ps = torch.empty(2, 3, 9, 8, device='meta')
    assert not selfcheck.check_spec(xs, w[:32, :32], ps, DIL, 1, 1).exact


def test_unreproducible_specialisation_keeps_the_reference(monkeypatch):
    _register(pad_conv2d_reference)
    _timer(monkeypatch, 0.5)
    x, w, b, p = _inputs(size=(8, 16))
    assert select_impl(x[..., ::2], w, p[..., ::2].contiguous(), DIL, 1,
                       1) == 'reference'
    assert select_impl(x, w, p, DIL, 1, 1) == 'fake'


@pytest.mark.parametrize('ratio,picked', [(0.95, False), (0.91, False),
                                          (0.9, True), (0.5, True)])
def test_auto_needs_a_ten_percent_win(monkeypatch, ratio, picked):
    _register(pad_conv2d_reference)
    _timer(monkeypatch, ratio)
    x, w, b, p = _inputs()
    assert select_impl(x, w, p, DIL, 1, 1) == ('fake' if picked else
                                               'reference')
    (choice, ) = dispatcher.report()['choices']
    assert choice['picked'] == picked


def test_shape_class_includes_batch_memory_format_and_weight_dtype(
        monkeypatch):
    timed = []

    def casting(x, w, b, p, *a):  # takes a weight in another dtype
        return pad_conv2d_reference(x, w.to(x.dtype), b, p, *a)

    _register(casting)
    dispatcher.register('reference', casting)
    _timer(monkeypatch, 0.5, timed)
    x, w, b, p = _inputs()
    for x_, w_, p_ in [(x, w, p), (x, w, p),  # same class: timed once
                       (*_inputs(n=3)[:2], _inputs(n=3)[3]),  # N
                       (x.contiguous(memory_format=torch.channels_last), w,
                        p),  # memory format
                       (x, w.double(), p)]:  # weight dtype
        select_impl(x_, w_, p_, DIL, 1, 1)
    assert timed.count('fake') == 4


def test_distributed_runs_the_same_implementation_on_every_rank(
        monkeypatch):
    """Under an initialized torch.distributed with several ranks, auto
    neither checks nor times per rank: every rank runs the reference."""
    timed = []
    _register(pad_conv2d_reference)
    _timer(monkeypatch, 0.1, timed)
    monkeypatch.setattr(torch.distributed, 'is_available', lambda: True)
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    monkeypatch.setattr(torch.distributed, 'get_world_size', lambda *a: 2)
    x, w, b, p = _inputs()
    assert select_impl(x, w, p, DIL, 1, 1) == 'reference'
    assert timed == [] and dispatcher.report()['checks'] == []
    monkeypatch.setenv('PAD_MM_IMPL', 'fake')  # forced alike on all ranks
    assert select_impl(x, w, p, DIL, 1, 1) == 'fake'
    monkeypatch.setattr(torch.distributed, 'get_world_size', lambda *a: 1)
    monkeypatch.delenv('PAD_MM_IMPL')
    assert select_impl(x, w, p, DIL, 1, 1) == 'fake'
