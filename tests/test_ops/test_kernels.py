"""Fast PAD implementations (fused kernels, sparse hard inference) against
the reference.

CPU CI: the mixed-im2col path, the sparse hard path and the dispatcher
match ``pad_conv2d_reference`` (values and every gradient) across modes,
dtypes, strides, groups and odd sizes; the Triton kernels are checked in
Triton's CPU interpreter (subprocess with ``TRITON_INTERPRET=1``). The GPU
tests are in tests/test_ops/test_triton_gpu.py (no OpenMMLab import).
Speed is measured by ``tools/analysis_tools/benchmark_pad.py``, never
here.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from pad_mm.models.layers.pad_conv import PADConv2d
from pad_mm.ops import (HAS_TRITON, available_impls, dispatcher,
                        gumbel_softmax, pad_conv2d, pad_conv2d_hard,
                        pad_conv2d_hard_reference, pad_conv2d_im2col,
                        pad_conv2d_reference, register_impl, select_impl)

from helpers.tools import load_tool

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10),
       torch.float32: dict(rtol=1e-4, atol=1e-4),
       torch.bfloat16: dict(rtol=3e-2, atol=3e-2)}


def _case(c_in, c_out, groups, k, size, stride, dilations=(1, 2, 4),
          dtype=torch.float64, mode='soft', n=2, seed=0):
    """Inputs (float64 masters) and probs of the given mode."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, *size, generator=g, dtype=torch.float64)
    w = torch.randn(c_out, c_in // groups, k, k, generator=g,
                    dtype=torch.float64) / (c_in // groups * k * k)**0.5
    b = torch.randn(c_out, generator=g, dtype=torch.float64)
    h_out, w_out = (size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1
    logits = torch.randn(n, len(dilations), h_out, w_out, generator=g,
                         dtype=torch.float64)
    # round the masters to the tested dtype so both sides see equal inputs
    x, w, b, logits = (t.to(dtype).to(torch.float64)
                       for t in (x, w, b, logits))
    return x, w, b, logits


def _probs(logits, mode, dtype):
    if mode == 'soft':
        return torch.softmax(logits, 1).to(dtype)
    if mode == 'straight_through':
        gen = torch.Generator().manual_seed(3)
        return gumbel_softmax(logits, tau=0.7, hard=True,
                              generator=gen).to(dtype)
    raise ValueError(mode)


def _run(fn, x, w, b, logits, mode, dtype, dilations, stride, groups):
    """Output and grads of (x, w, b, logits) for a given implementation."""
    leaves = [t.detach().to(dtype).requires_grad_() for t in (x, w, b)]
    lg = logits.detach().clone().requires_grad_()
    probs = _probs(lg, mode, dtype)
    out = fn(*leaves, probs, dilations, stride, groups)
    gen = torch.Generator().manual_seed(9)
    go = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    (out.double() * go.to(out.device)).sum().backward()
    return [out.detach().double()] + [t.grad.double()
                                      for t in (*leaves, lg)]


CONFIGS = [
    # c_in, c_out, groups, k, size, stride, dilations
    (6, 4, 1, 3, (9, 11), 1, (1, 2, 4)),
    (6, 5, 1, 3, (8, 7), 2, (1, 2, 4)),
    (6, 6, 6, 3, (7, 9), 2, (1, 2, 4)),  # depthwise
    (4, 8, 4, 3, (9, 8), 1, (1, 3)),  # depthwise, multiplier 2
    (4, 6, 2, 5, (10, 7), 2, (2, 3)),  # grouped, 5x5
    (3, 4, 1, 3, (1, 5), 1, (1, 4)),  # one row, dilation > size
]


@pytest.mark.parametrize('cfg,dtype', [
    (cfg, dt) for cfg in CONFIGS for dt in (torch.float64, torch.float32)
] + [(CONFIGS[1], torch.bfloat16), (CONFIGS[2], torch.bfloat16)])
@pytest.mark.parametrize('mode', ['soft', 'straight_through'])
def test_im2col_matches_reference(cfg, mode, dtype):
    c_in, c_out, groups, k, size, stride, dil = cfg
    x, w, b, logits = _case(c_in, c_out, groups, k, size, stride, dil,
                            dtype)
    # ground truth: the reference in float64 on the same (rounded) inputs
    ref = _run(pad_conv2d_reference, x, w, b, logits, mode, torch.float64,
               dil, stride, groups)
    got = _run(pad_conv2d_im2col, x, w, b, logits, mode, dtype, dil,
               stride, groups)
    names = ['out', 'grad_input', 'grad_weight', 'grad_bias',
             'grad_logits']
    for name, a, e in zip(names, got, ref):
        assert a.shape == e.shape, name
        scale = e.abs().max().clamp(min=1)
        torch.testing.assert_close(a / scale, e / scale, **TOL[dtype],
                                   msg=lambda m: f'{name}: {m}')


def test_im2col_output_dtype_and_probs_grad_nonzero():
    x, w, b, logits = _case(6, 4, 1, 3, (6, 6), 1)
    p = torch.softmax(logits, 1).float().requires_grad_()
    out = pad_conv2d_im2col(x.bfloat16(), w.bfloat16(), None, p.bfloat16(),
                            (1, 2, 4))
    assert out.dtype == torch.bfloat16 and out.shape == (2, 4, 6, 6)
    out.float().sum().backward()
    assert p.grad is not None and p.grad.abs().sum() > 0


def test_gradcheck_im2col():
    x, w, b, logits = _case(4, 3, 1, 3, (5, 6), 2, n=1)
    args = [t.clone().requires_grad_()
            for t in (x, w, b, torch.softmax(logits, 1))]
    assert torch.autograd.gradcheck(
        lambda *a: pad_conv2d_im2col(*a, (1, 2, 4), 2), args)
    xd, wd, bd, ld = _case(4, 4, 4, 3, (5, 5), 1, n=1)  # depthwise
    args = [t.clone().requires_grad_()
            for t in (xd, wd, bd, torch.softmax(ld, 1))]
    assert torch.autograd.gradcheck(
        lambda *a: pad_conv2d_im2col(*a, (1, 2, 4), 1, 4), args)


def test_im2col_channels_last_and_no_bias():
    x, w, _, logits = _case(6, 4, 1, 3, (7, 8), 1)
    p = torch.softmax(logits, 1)
    x_cl = x.to(memory_format=torch.channels_last)
    torch.testing.assert_close(
        pad_conv2d_im2col(x_cl, w, None, p, (1, 2, 4)),
        pad_conv2d_reference(x, w, None, p, (1, 2, 4)))


def _one_hot(index, d):
    return F.one_hot(index, d).permute(0, 3, 1, 2).double()


@pytest.mark.parametrize('cfg', CONFIGS)
@pytest.mark.parametrize('impl', ['auto', 'im2col', 'reference'])
def test_hard_path_matches_one_hot_reference(cfg, impl):
    c_in, c_out, groups, k, size, stride, dil = cfg
    x, w, b, logits = _case(c_in, c_out, groups, k, size, stride, dil)
    index = logits.argmax(1)
    assert index.unique().numel() > 1  # a real mix of dilations
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    out = pad_conv2d_hard(*leaves, index, dil, stride, groups, impl=impl)
    ref_leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    ref = pad_conv2d_reference(*ref_leaves, _one_hot(index, len(dil)), dil,
                               stride, groups)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    go = torch.randn_like(ref)
    for a, e in zip(torch.autograd.grad(out, leaves, go),
                    torch.autograd.grad(ref, ref_leaves, go)):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('choice', [0, 2])
def test_hard_path_uniform_choice_is_plain_dilated_conv(choice):
    x, w, b, _ = _case(5, 7, 1, 3, (9, 9), 2)
    dil = (1, 2, 3)
    index = torch.full((2, 5, 5), choice, dtype=torch.long)
    expected = F.conv2d(x, w, b, 2, dil[choice], dil[choice])
    for impl in ('im2col', 'reference'):
        torch.testing.assert_close(
            pad_conv2d_hard(x, w, b, index, dil, 2, impl=impl), expected)


def test_hard_path_float32_and_bfloat16():
    x, w, b, logits = _case(16, 16, 1, 3, (9, 10), 1)
    index = logits.argmax(1)
    ref = pad_conv2d_hard_reference(x, w, b, index, (1, 2, 4))
    for dtype in (torch.float32, torch.bfloat16):
        out = pad_conv2d_hard(x.to(dtype), w.to(dtype), b.to(dtype), index,
                              (1, 2, 4), impl='im2col')
        assert out.dtype == dtype
        torch.testing.assert_close(out.double(), ref, **TOL[dtype])


@pytest.mark.parametrize('index,err,match', [
    (torch.zeros(2, 5, 5, dtype=torch.long), ValueError,
     r'index must be \[N, H_out, W_out\]'),
    (torch.zeros(2, 6, 6), TypeError, 'index must be an integer'),
    (torch.full((2, 6, 6), 3, dtype=torch.long), ValueError,
     r'index values must be in \[0, 3\)'),
    (torch.full((2, 6, 6), -1, dtype=torch.long), ValueError,
     'index values'),
])
def test_hard_path_bad_index(index, err, match):
    x, w, b, _ = _case(4, 4, 1, 3, (6, 6), 1)
    with pytest.raises(err, match=match):
        pad_conv2d_hard(x, w, b, index, (1, 2, 4))


def test_dispatcher_choices_on_cpu():
    assert {'auto', 'reference', 'im2col',
            'triton'} <= set(available_impls())
    # hard inference also has the export-friendly 'export' (recorded graphs)
    assert set(available_impls(hard=True)) == set(available_impls()) | {
        'export'}
    x = torch.randn(1, 32, 8, 8)
    w = torch.randn(32, 32, 3, 3)
    p = torch.rand(1, 3, 8, 8)
    index = torch.zeros(1, 8, 8, dtype=torch.long)
    assert select_impl(x, w, p, (1, 2, 4), 1, 1) == 'im2col'
    assert select_impl(x, w, index, (1, 2, 4), 1, 1, hard=True) == 'im2col'
    # depthwise on the CPU: the reference's depthwise convs are faster
    wd = torch.randn(32, 1, 3, 3)
    assert select_impl(x, wd, p, (1, 2, 4), 1, 32) == 'reference'
    # tiny GEMMs: reference
    assert select_impl(x[:, :4], w[:4, :4], p, (1, 2, 4), 1, 1) == \
        'reference'
    # forcing
    assert select_impl(x, w, p, (1, 2, 4), 1, 1, 'reference') == 'reference'
    assert select_impl(x, wd, p, (1, 2, 4), 1, 32, 'im2col') == 'im2col'
    # Triton never runs CPU tensors outside the interpreter
    if os.environ.get('TRITON_INTERPRET') != '1':
        with pytest.raises(ValueError, match="impl='triton' does not"):
            select_impl(x, w, p, (1, 2, 4), 1, 1, 'triton')
    with pytest.raises(ValueError, match='impl must be one of'):
        pad_conv2d_hard(x, w, None, index, (1, 2, 4), impl='cuda')


@pytest.fixture
def isolated_dispatcher():
    """Registrations and dispatch state restored after the test."""
    with dispatcher.isolated():
        yield dispatcher


def test_dispatcher_falls_back_and_runs_registered(isolated_dispatcher):
    calls = []

    def fake(*args):
        calls.append('fake')
        return pad_conv2d_reference(*args)

    register_impl('fake', fake, lambda x, *a: x.shape[1] == 3, priority=0)
    order = dispatcher.auto_order()
    assert order[0] == 'fake' and order[-1] == 'reference'
    x3, w3 = torch.randn(1, 3, 5, 5), torch.randn(3, 3, 3, 3)
    p = torch.rand(1, 2, 5, 5)
    out = pad_conv2d(x3, w3, None, p, (1, 2))
    assert calls == ['fake']
    torch.testing.assert_close(
        out, pad_conv2d_reference(x3, w3, None, p, (1, 2)))
    # unsupported by 'fake': the next preferred one or the reference
    x4, w4 = torch.randn(1, 4, 5, 5), torch.randn(4, 4, 3, 3)
    assert select_impl(x4, w4, p, (1, 2), 1, 1) in ('im2col', 'reference')
    pad_conv2d(x4, w4, None, p, (1, 2))
    assert calls == ['fake']
    with pytest.raises(ValueError, match="impl='fake' does not support"):
        pad_conv2d(x4, w4, None, p, (1, 2), impl='fake')


def _layer(impl, eval_mode='hard', c=16):
    torch.manual_seed(0)
    layer = PADConv2d(c, c, 3, padding=1, dilations=(1, 2, 4),
                      eval_mode=eval_mode, impl=impl).eval()
    with torch.no_grad():
        layer.prior.input_weight.normal_(0, 1)
    return layer


def test_layer_hard_eval_uses_sparse_path(isolated_dispatcher):
    layer = _layer('auto')
    x = torch.randn(2, 16, 9, 9)
    expected = _layer('reference')(x)
    hard_calls = []
    entry = dispatcher.entry('im2col', hard=True)

    def spy(*args):
        hard_calls.append(args[3])
        return entry.fn(*args)

    dispatcher.register('im2col', spy, entry.supports, prefer=entry.prefer,
                        hard=True)
    out = layer(x)
    assert len(hard_calls) == 1
    index = hard_calls[0]
    assert index.shape == (2, 9, 9) and index.unique().numel() > 1
    torch.testing.assert_close(out, expected)
    # impl='reference' forces the ground truth
    _layer('reference')(x)
    assert len(hard_calls) == 1


def test_layer_hard_eval_respects_probe_hook():
    layer = _layer('auto')
    x = torch.randn(1, 16, 8, 8)
    forced = torch.zeros(1, 3, 8, 8)
    forced[:, 2] = 1  # the hook forces dilation 4 everywhere
    layer.probe.register_forward_hook(lambda m, i, o: forced)
    torch.testing.assert_close(
        layer(x), F.conv2d(x, layer.weight, layer.bias, 1, 4, 4))


def test_layer_soft_and_training_match_reference():
    x = torch.randn(2, 16, 7, 7)
    for mode in ('soft', 'hard'):
        fast, ref = _layer('auto', mode), _layer('reference', mode)
        torch.testing.assert_close(fast(x), ref(x))
    fast, ref = _layer('auto'), _layer('reference')
    fast.train()
    ref.train()
    grads = []
    for layer in (fast, ref):
        torch.manual_seed(5)  # same Gumbel noise
        layer(x).square().sum().backward()
        grads.append([layer.weight.grad, layer.bias.grad,
                      layer.prior.input_weight.grad])
    for a, e in zip(*grads):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4)


def test_tracing_and_export_use_the_reference():
    """Exported graphs must not bake in data-dependent fast paths."""
    layer = _layer('auto')
    x = torch.randn(1, 16, 9, 9)
    traced = torch.jit.trace(layer, (x, ), check_trace=False)
    assert 'PythonOp' not in str(traced.inlined_graph)
    y = torch.randn(1, 16, 9, 9) * 3  # other inputs, other choices
    with torch.no_grad():
        expected = _layer('reference')(y)
        torch.testing.assert_close(traced(y), expected)
        exported = torch.export.export(layer, (x, ))
        torch.testing.assert_close(exported.module()(y), expected)


def test_autocast_keeps_reference_semantics():
    x = torch.randn(1, 16, 8, 8)
    w = torch.randn(16, 16, 3, 3)
    p = torch.softmax(torch.randn(1, 3, 8, 8), 1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert select_impl(x, w, p, (1, 2, 4), 1, 1) == 'reference'
        out = pad_conv2d(x, w, None, p, (1, 2, 4))
        # exactly the reference under autocast (bf16 convs)
        torch.testing.assert_close(
            out, pad_conv2d_reference(x, w, None, p, (1, 2, 4)), rtol=0,
            atol=0)
        # the named im2col path computes in float32 under autocast
        fast = pad_conv2d(x, w, None, p, (1, 2, 4), impl='im2col')
    assert fast.dtype == torch.float32
    ref = pad_conv2d_reference(x, w, None, p, (1, 2, 4))
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.float(), ref, rtol=5e-2, atol=5e-1)


def test_benchmark_script_writes_json(tmp_path, repo_root):
    mod = _load_benchmark(repo_root)
    out = tmp_path / 'bench.json'
    info = mod.main(['--shapes', 'tiny', '--repeats', '2', '--warmup', '1',
                     '--device', 'cpu', '--out', str(out)])
    data = json.loads(out.read_text())
    assert data['device_type'] == 'cpu' and data['torch'] == torch.__version__
    assert data['date'] and data['table'] == info['table']
    assert data['time_ratios'].startswith('paired by round')
    assert data['compiled_helpers'] == mod.native.status()
    (res, ) = data['results']
    assert res['shape'] == 'tiny' and res['impls'] == ['reference', 'im2col']
    for key in ('fwd_ms', 'fwd_bwd_ms', 'hard_ms'):
        # hard inference also times what impl='auto' runs, a plain conv
        # on a packed oneDNN weight (the CPU hard path's GEMM packs) and
        # the GEMM of the differing pixels alone (the sparse floor)
        extra = {'auto'} | ({'conv_packed', 'gemm_differing'} if
                            torch.backends.mkldnn.is_available() else set())
        # and auto without the compiled gather, where it is in use
        extra |= {'auto_torch_ops'} if mod.native.available() else set()
        extra = extra if key == 'hard_ms' else set()
        # every timing has the plain conv timed twice (A/A control)
        assert set(res[key]) == {'conv', 'conv_again', 'reference',
                                 'im2col'} | extra
        assert all(v > 0 for v in res[key].values())
        assert res[key + '_ratio']['conv'] == 1.0
        assert set(res[key + '_ratio']) == set(res[key])
    # the PAD layer saves x, weight and probs (im2col) or more (reference)
    assert res['saved_mib']['im2col'] >= res['saved_mib']['conv'] > 0
    assert '| tiny | 1 | forward+backward |' in data['table']


def test_benchmark_times_with_the_threads_it_was_given(repo_root):
    """--threads sets torch's threads; the timer must not reset them
    (torch.utils.benchmark.Timer runs single-threaded by default)."""
    mod = _load_benchmark(repo_root)
    seen = []
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        mod.time_interleaved({'f': lambda: seen.append(
            torch.get_num_threads())}, 'cpu', 2, 1)
    finally:
        torch.set_num_threads(old)
    assert seen and set(seen) == {2}


def test_benchmark_ratios_are_paired_by_round(repo_root):
    """A ratio is the median of the per-round ratios, not the ratio of
    medians: a slow round counts against both sides."""
    mod = _load_benchmark(repo_root)
    q = mod.paired_ratio({'conv': [1.0, 2.0, 4.0], 'x': [1.5, 2.0, 12.0]})
    assert q == {'conv': 1.0, 'x': 1.5}  # ratio of medians would be 1.0
    rounds = {}
    ms = mod.time_interleaved({'conv': lambda: None, 'x': lambda: None},
                              'cpu', 3, 0, rounds)
    assert set(rounds) == {'conv', 'x'}
    assert all(len(v) == 3 and min(v) > 0 for v in rounds.values())
    assert ms['x'] == sorted(rounds['x'])[1]


def test_benchmark_alternates_the_order_and_times_an_a_a_control(repo_root):
    """Every other round runs in reverse order (no function always
    follows the same one), and ``control`` is timed a second time per
    round under ``<control>_again``, with its own paired ratio."""
    mod = _load_benchmark(repo_root)
    calls = []
    fns = {k: (lambda k=k: calls.append(k)) for k in ('a', 'b', 'c')}
    mod.time_interleaved(fns, 'cpu', 4, 0)
    # calibration calls in order, then a block of calls per function and
    # round; blocks of one function meet at each turn and merge
    runs = [k for i, k in enumerate(calls) if i == 0 or calls[i - 1] != k]
    assert runs == ['a', 'b', 'c'] + ['a', 'b', 'c', 'b', 'a', 'b', 'c',
                                      'b', 'a']
    rounds = {}
    mod.time_interleaved(fns, 'cpu', 3, 0, rounds, control='b')
    assert set(rounds) == {'a', 'b', 'c', 'b_again'}
    assert all(len(v) == 3 and min(v) > 0 for v in rounds.values())
    assert mod.paired_ratio(rounds, 'b')['b_again'] > 0
    with pytest.raises(KeyError):
        mod.time_interleaved(fns, 'cpu', 1, 0, control='z')


def test_benchmark_packed_conv_baseline_equals_conv(repo_root):
    mod = _load_benchmark(repo_root)
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(2, 16, 9, 10, generator=g), torch.randn(
        24, 16, 3, 3, generator=g)
    b = torch.randn(24, generator=g)
    fn = mod.packed_conv(x, w, b, 1, 2, 2, 1)
    if not torch.backends.mkldnn.is_available():
        assert fn is None
        return
    torch.testing.assert_close(fn(), F.conv2d(x, w, b, 1, 2, 2), rtol=1e-4,
                               atol=1e-4)
    # only float32 CPU convs without groups
    assert mod.packed_conv(x.double(), w.double(), None, 1, 1, 1, 1) is None
    assert mod.packed_conv(x, w[:, :8], None, 1, 1, 1, 2) is None


def _load_benchmark(repo_root):
    return load_tool(repo_root, 'analysis_tools/benchmark_pad.py')


@pytest.mark.parametrize('argv,match', [
    (['--shapes', 'nope'], '--shapes'),
    (['--batch', '0'], '--batch must be >= 1'),
    (['--repeats', '0'], '--repeats must be >= 1'),
    (['--device', 'tpu'], "--device must be 'cpu' or 'cuda'"),
])
def test_benchmark_script_rejects_bad_arguments(repo_root, capsys, argv,
                                                match):
    mod = _load_benchmark(repo_root)
    with pytest.raises(SystemExit):
        mod.parse_args(argv)
    assert match in capsys.readouterr().err


# ---------------------------------------------------------------- Triton ---

_INTERPRET_SCRIPT = textwrap.dedent('''
    import torch, torch.nn.functional as F
    from pad_mm.ops import (pad_conv2d, pad_conv2d_hard, pad_conv2d_reference,
                            select_impl)
    tol = {torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 3e-2}
    cases = [  # c_in, c_out, groups, size, stride, dtype, channels_last
        (5, 17, 1, (7, 6), 1, torch.float32, False),
        (6, 6, 6, (6, 7), 2, torch.float32, True),
        (5, 7, 1, (6, 5), 2, torch.bfloat16, True),
        (4, 5, 1, (5, 6), 1, torch.float16, False),
    ]
    dil = (1, 2, 4)
    for i, (ci, co, g, size, s, dt, cl) in enumerate(cases):
        gen = torch.Generator().manual_seed(i)
        x = torch.randn(2, ci, *size, generator=gen).to(dt)
        w = (torch.randn(co, ci // g, 3, 3, generator=gen) / 3).to(dt)
        b = torch.randn(co, generator=gen).to(dt)
        ho, wo = (size[0] - 1) // s + 1, (size[1] - 1) // s + 1
        lg = torch.randn(2, 3, ho, wo, generator=gen)
        if i % 2:  # straight-through probabilities
            soft = torch.softmax(lg, 1)
            hard = F.one_hot(soft.argmax(1), 3).permute(0, 3, 1, 2)
            probs = (hard - soft + soft).to(dt)
        else:
            probs = torch.softmax(lg, 1).to(dt)
        if cl:
            x = x.to(memory_format=torch.channels_last)
        assert select_impl(x, w, probs, dil, s, g, 'triton') == 'triton'
        leaves = [t.clone().requires_grad_() for t in (x, w, b, probs)]
        out = pad_conv2d(*leaves, dil, s, g, impl='triton')
        assert out.dtype == dt
        assert out.is_contiguous(memory_format=torch.channels_last) == cl
        ref_leaves = [t.detach().double().requires_grad_()
                      for t in (x, w, b, probs)]
        ref = pad_conv2d_reference(*ref_leaves, dil, s, g)
        go = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
        got = [out] + list(torch.autograd.grad(out, leaves, go.to(dt)))
        exp = [ref] + list(torch.autograd.grad(ref, ref_leaves, go))
        for name, a, e in zip(['out', 'gx', 'gw', 'gb', 'gp'], got, exp):
            err = ((a.double() - e).abs().max() / e.abs().max()).item()
            assert err < tol[dt], (i, name, err)
        index = lg.argmax(1)
        hard_out = pad_conv2d_hard(x, w, b, index, dil, s, g, impl='triton')
        oh = F.one_hot(index, 3).permute(0, 3, 1, 2).double()
        ref_h = pad_conv2d_reference(*[t.double() for t in (x, w, b)], oh,
                                     dil, s, g)
        err = ((hard_out.double() - ref_h).abs().max() /
               ref_h.abs().max()).item()
        assert err < tol[dt], (i, 'hard', err)
    # autocast: the kernels run in the autocast dtype, like a conv
    x = torch.randn(1, 16, 5, 5)
    w = torch.randn(16, 16, 3, 3) / 12
    p = torch.softmax(torch.randn(1, 3, 5, 5), 1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = pad_conv2d(x, w, None, p, dil, impl='triton')
    assert out.dtype == torch.bfloat16
    ref = pad_conv2d_reference(x.double(), w.double(), None, p.double(), dil)
    err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
    assert err < 3e-2, ('autocast', err)
    # fp32 weight, bias and probs with bf16 activations (AMP's parameters),
    # backward's buffer path chunked one image at a time: gradients in
    # each one's dtype
    from pad_mm.ops import triton_pad
    triton_pad.BWD_BUFFER_BYTES = 1
    # and a channels_last weight (model.to(memory_format=channels_last)):
    # its gradient keeps the parameter's strides
    x = torch.randn(2, 16, 5, 6).bfloat16().requires_grad_()
    w = (torch.randn(16, 16, 3, 3) / 12).to(
        memory_format=torch.channels_last).requires_grad_()
    b = torch.randn(16).requires_grad_()
    p = torch.softmax(torch.randn(2, 3, 5, 6), 1).requires_grad_()
    with triton_pad.bwd_input_path('buffer'):
        out = pad_conv2d(x, w, b, p, dil, impl='triton')
        assert out.dtype == torch.bfloat16
        grads = torch.autograd.grad(out.float().sum(), (x, w, b, p))
    assert [g.dtype for g in grads] == [torch.bfloat16] + [torch.float32] * 3
    assert grads[1].stride() == w.stride(), (grads[1].stride(), w.stride())
    ref_leaves = [t.detach().double().requires_grad_() for t in (x, w, b, p)]
    ref = pad_conv2d_reference(*ref_leaves, dil)
    exp = torch.autograd.grad(ref.sum(), ref_leaves)
    for name, a, e in zip(['out', 'gx', 'gw', 'gb', 'gp'], [out, *grads],
                          [ref, *exp]):
        err = ((a.double() - e).abs().max() / e.abs().max()).item()
        assert err < 3e-2, ('mixed', name, err)
    print('ok', len(cases))
''')


@pytest.mark.skipif(not HAS_TRITON, reason='triton is not installed')
def test_triton_kernels_in_interpreter(repo_root):
    env = dict(os.environ, TRITON_INTERPRET='1', PYTHONPATH=repo_root)
    out = subprocess.run([sys.executable, '-c', _INTERPRET_SCRIPT],
                         capture_output=True, text=True, env=env,
                         cwd=repo_root, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == 'ok 4'


_BACKWARD_PATHS_SCRIPT = textwrap.dedent('''
    import torch, torch.nn.functional as F
    from pad_mm.ops import (pad_conv2d, pad_conv2d_hard, pad_conv2d_reference,
                            triton_pad)
    dil = (1, 2, 3)

    def check(got, exp, what):
        for i, (a, e) in enumerate(zip(got, exp)):
            err = ((a.double() - e).abs().max() / e.abs().max()).item()
            assert err < 1e-4, (what, i, err)

    # which gradients are needed picks the backward-columns variant (buffer
    # for grad_input, grad_probs' partial sums, or both); groups and
    # several input-channel tiles per group (interpreter tiles: 16); one
    # image per chunk; NCHW and channels_last
    cases = [  # c_in, c_out, groups, stride, channels_last, needs, chunked
        (20, 6, 1, 1, False, (True, True, True, False), False),
        (20, 6, 1, 2, True, (False, True, False, True), False),
        (32, 8, 2, 1, False, (True, True, True, True), True),
    ]
    for i, (ci, co, g, s, cl, needs, chunked) in enumerate(cases):
        gen = torch.Generator().manual_seed(i)
        x = torch.randn(2, ci, 5, 4, generator=gen)
        w = torch.randn(co, ci // g, 3, 3, generator=gen) / 3
        b = torch.randn(co, generator=gen)
        ho, wo = (5 - 1) // s + 1, (4 - 1) // s + 1
        p = torch.softmax(torch.randn(2, 3, ho, wo, generator=gen), 1)
        if cl:
            x = x.to(memory_format=torch.channels_last)
        leaves = [t.clone().requires_grad_(r)
                  for t, r in zip((x, w, b, p), needs)]
        with triton_pad.bwd_buffer_limit(1 if chunked else 128 << 20), \
                triton_pad.bwd_input_path('buffer'):
            out = pad_conv2d(*leaves, dil, s, g, impl='triton')
            fmt = torch.channels_last if cl else torch.contiguous_format
            assert out.is_contiguous(memory_format=fmt)
            ref_leaves = [t.detach().double().requires_grad_(r)
                          for t, r in zip((x, w, b, p), needs)]
            ref = pad_conv2d_reference(*ref_leaves, dil, s, g)
            go = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
            got = torch.autograd.grad(
                out, [t for t in leaves if t.requires_grad], go.float())
        exp = torch.autograd.grad(
            ref, [t for t in ref_leaves if t.requires_grad], go)
        if needs[0]:
            assert got[0].is_contiguous(memory_format=fmt)
        check([out, *got], [ref, *exp], i)
    # the hard op's gradients (the soft ones at one-hot probabilities)
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(1, 20, 5, 4, generator=gen).requires_grad_()
    w = (torch.randn(6, 20, 3, 3, generator=gen) / 3).requires_grad_()
    idx = torch.randint(0, 3, (1, 5, 4), generator=gen)
    out = pad_conv2d_hard(x, w, None, idx, dil, impl='triton')
    oh = F.one_hot(idx, 3).permute(0, 3, 1, 2).double()
    xr, wr = (t.detach().double().requires_grad_() for t in (x, w))
    ref = pad_conv2d_reference(xr, wr, None, oh, dil)
    go = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    check([out, *torch.autograd.grad(out, (x, w), go.float())],
          [ref, *torch.autograd.grad(ref, (xr, wr), go)], 'hard')
    print('ok', len(cases) + 1)
''')


@pytest.mark.skipif(not HAS_TRITON, reason='triton is not installed')
def test_triton_backward_paths_in_interpreter(repo_root):
    env = dict(os.environ, TRITON_INTERPRET='1', PYTHONPATH=repo_root)
    out = subprocess.run([sys.executable, '-c', _BACKWARD_PATHS_SCRIPT],
                         capture_output=True, text=True, env=env,
                         cwd=repo_root, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == 'ok 4'


_GEMM_PATH_SCRIPT = textwrap.dedent('''
    import os
    import torch
    from pad_mm.ops import pad_conv2d, pad_conv2d_reference, triton_pad

    def kernels(*args, **kw):
        return [la.kernel.fn.__name__
                for la in triton_pad.record_launches(*args, **kw)]

    def check(got, exp, what, tol=1e-4):
        for i, (a, e) in enumerate(zip(got, exp)):
            err = ((a.double() - e).abs().max() / e.abs().max()).item()
            assert err < tol, (what, i, err)

    # grad_input by the GEMM path (no buffer): stride 2, groups, k = 5 with
    # D = 4, NCHW and channels_last, which gradients are needed
    cases = [  # c_in, c_out, groups, stride, k, dil, channels_last, needs
        (20, 6, 1, 1, 3, (1, 2, 3), False, (True, True, True, True)),
        (20, 6, 1, 2, 3, (1, 2, 3), True, (True, False, False, False)),
        (32, 8, 2, 1, 3, (1, 2, 3), False, (True, True, True, True)),
        (16, 16, 1, 1, 5, (1, 2, 3, 4), True, (True, True, False, True)),
    ]
    for i, (ci, co, g, s, k, dil, cl, needs) in enumerate(cases):
        gen = torch.Generator().manual_seed(i)
        x = torch.randn(2, ci, 7, 6, generator=gen)
        w = torch.randn(co, ci // g, k, k, generator=gen) / k
        b = torch.randn(co, generator=gen)
        ho, wo = (7 - 1) // s + 1, (6 - 1) // s + 1
        p = torch.softmax(torch.randn(2, len(dil), ho, wo, generator=gen),
                          1)
        if cl:
            x = x.to(memory_format=torch.channels_last)
        leaves = [t.clone().requires_grad_(r)
                  for t, r in zip((x, w, b, p), needs)]
        with triton_pad.bwd_input_path('gemm'):
            names = kernels(x, w, b, p, dil, s, g)
            out = pad_conv2d(*leaves, dil, s, g, impl='triton')
            go = torch.randn(out.shape, generator=gen)
            got = torch.autograd.grad(
                out, [t for t in leaves if t.requires_grad], go)
        assert names.count('bwd_input_gemm_kernel') == 1, names
        assert 'bwd_input_kernel' not in names, names
        ref_leaves = [t.detach().double().requires_grad_(r)
                      for t, r in zip((x, w, b, p), needs)]
        ref = pad_conv2d_reference(*ref_leaves, dil, s, g)
        exp = torch.autograd.grad(
            ref, [t for t in ref_leaves if t.requires_grad], go.double())
        fmt = torch.channels_last if cl else torch.contiguous_format
        assert got[0].is_contiguous(memory_format=fmt)
        check([out, *got], [ref, *exp], i)

    # 'auto' takes the buffer path where one image's buffer fits the bound,
    # the GEMM path where it does not; PAD_MM_BWD_BUFFER_MB sets the bound
    x = torch.randn(2, 16, 5, 6)
    w = torch.randn(16, 16, 3, 3) / 12
    p = torch.softmax(torch.randn(2, 3, 5, 6), 1).requires_grad_()
    dil = (1, 2, 3)
    assert 'bwd_input_kernel' in kernels(x, w, None, p, dil)
    os.environ['PAD_MM_BWD_BUFFER_MB'] = '0'
    assert triton_pad.bwd_buffer_bytes() == 0
    assert 'bwd_input_gemm_kernel' in kernels(x, w, None, p, dil)
    with triton_pad.bwd_input_path('buffer'):  # forced: one image a chunk
        assert kernels(x, w, None, p, dil).count('bwd_input_kernel') == 2
    for bad in ('-1', 'lots', 'inf'):
        os.environ['PAD_MM_BWD_BUFFER_MB'] = bad
        try:
            triton_pad.bwd_buffer_bytes()
        except ValueError as err:
            assert 'PAD_MM_BWD_BUFFER_MB' in str(err) and bad in str(err)
        else:
            raise AssertionError(bad)
    del os.environ['PAD_MM_BWD_BUFFER_MB']
    try:
        triton_pad.bwd_input_path('fast').__enter__()
    except ValueError as err:
        assert "'fast'" in str(err) and 'gemm' in str(err)
    else:
        raise AssertionError('path')
    # a bf16 weight gets its bf16 gradient straight from the kernel: the
    # fp32 one within one bf16 step (the interpreter's cast truncates, a
    # GPU's rounds to nearest)
    xb = torch.randn(1, 16, 5, 6).bfloat16()
    wb = (torch.randn(16, 16, 3, 3) / 12).bfloat16().requires_grad_()
    w32 = wb.detach().float().requires_grad_()
    pb = torch.softmax(torch.randn(1, 3, 5, 6), 1)
    gb = torch.autograd.grad(pad_conv2d(xb, wb, None, pb, dil,
                                        impl='triton').float().sum(), wb)[0]
    g32 = torch.autograd.grad(pad_conv2d(xb, w32, None, pb, dil,
                                         impl='triton').float().sum(),
                              w32)[0]
    assert gb.dtype == torch.bfloat16
    assert ((gb.float() - g32).abs() <= g32.abs() * 2**-7 + 1e-6).all()
    print('ok', len(cases))
''')


@pytest.mark.skipif(not HAS_TRITON, reason='triton is not installed')
def test_triton_gemm_backward_path_in_interpreter(repo_root):
    """grad_input by one implicit GEMM over grad_out (no [pixels, k*k, C]
    buffer): values and every gradient against the float64 reference,
    and when 'auto' takes it."""
    env = dict(os.environ, TRITON_INTERPRET='1', PYTHONPATH=repo_root)
    env.pop('PAD_MM_BWD_BUFFER_MB', None)
    out = subprocess.run([sys.executable, '-c', _GEMM_PATH_SCRIPT],
                         capture_output=True, text=True, env=env,
                         cwd=repo_root, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == 'ok 4'


@pytest.mark.skipif(not HAS_TRITON, reason='triton is not installed')
def test_tile_override_sets_the_launch_tiles_and_checks_them():
    """The tile sweep's override: the recorded launches take the tiles
    (constexprs and grid), only inside the block; bad tiles are refused
    with the field and what is allowed."""
    from pad_mm.ops import triton_pad
    from pad_mm.ops.impls.triton_tiles import (BLOCKS, TILE_CANDIDATES,
                                                 tile_override)
    x = torch.empty(2, 64, 16, 32, device='meta', dtype=torch.bfloat16)
    w = torch.empty(256, 64, 3, 3, device='meta')
    p = torch.empty(2, 3, 16, 32, device='meta')

    def fwd():
        (la, ) = [la for la in triton_pad.record_launches(
            x, w, None, p, (1, 2, 4), backward=False)]
        return la

    assert fwd().meta['BN'] == BLOCKS['fwd']['BN'] == 128
    assert fwd().grid == (2 * 16 * 32 // 64, 256 // 128, 1)
    for tiles in TILE_CANDIDATES['fwd']:
        with tile_override('fwd', tiles):
            la = fwd()
        assert {k: la.meta[k] for k in tiles} == tiles
        assert la.grid == (1024 // tiles['BM'], 256 // tiles['BN'], 1)
    assert fwd().meta['BN'] == 128  # restored
    with pytest.raises(ValueError, match="kernel must be one of"):
        tile_override('nope', {}).__enter__()
    with pytest.raises(ValueError, match='power of two >= 16'):
        tile_override('fwd', dict(BM=48, BN=64, BK=32)).__enter__()
    with pytest.raises(ValueError, match="'BK', 'BM', 'BN'"):
        tile_override('fwd', dict(BM=64, BN=64)).__enter__()
    with pytest.raises(ValueError, match='num_warps must be 2, 4 or 8'):
        tile_override('fwd', dict(BM=64, BN=64, BK=32,
                                  num_warps=3)).__enter__()
    # warps are a launch option the sweep passes with the tiles
    assert any('num_warps' in t for t in TILE_CANDIDATES['fwd'])
