"""The compiled CPU helpers of the hard path (pad_mm/ops/impls/native.py):
built with the system C compiler, checked against torch ops before use,
never used unchecked, and their fallback."""
import shutil
import warnings

import pytest
import torch

from pad_mm.ops import hard_im2col, native, pad_conv2d_hard_reference
from pad_mm.ops.impls.taps import tap_rows, tap_rows_index

HAS_CC = shutil.which('cc') is not None or shutil.which('gcc') is not None
needs_cc = pytest.mark.skipif(not HAS_CC, reason='no C compiler')


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A process-fresh state (nothing built, loaded or checked yet) with
    its own cache folder."""
    native.reset()
    monkeypatch.setenv('PAD_MM_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.delenv('PAD_MM_NATIVE', raising=False)
    yield tmp_path / 'cache'
    native.reset()  # the next use builds or loads and checks again


def _case(seed, n=2, c=37, h=9, w=11, stride=1, share=0.6):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g)
    h_out, w_out = (h - 1) // stride + 1, (w - 1) // stride + 1
    pix = torch.nonzero(torch.rand(n * h_out * w_out, generator=g) < share
                        ).view(-1)
    dil = torch.tensor([1, 2, 4])[torch.randint(0, 3, pix.shape,
                                                generator=g)]
    return x, pix, dil, h_out, w_out


@needs_cc
@pytest.mark.parametrize('k,stride', [(3, 1), (3, 2), (5, 1), (1, 1)])
def test_gather_equals_the_torch_op_gather(k, stride):
    """Row m = pixel m's k x k taps (kernel row, column, channel), zero
    outside the input: what tap_rows + tap_rows_index give."""
    x, pix, dil, h_out, w_out = _case(k + stride, stride=stride)
    n, c, h, w = x.shape
    out = native.gather_taps(x, pix, dil, h_out, w_out, k, stride,
                             torch.full((pix.numel(), k * k * c), 7.0))
    p = pix % (h_out * w_out)
    flat = tap_rows_index(pix // (h_out * w_out), p // w_out, p % w_out,
                          dil, k, stride, n, h, w)
    exp = tap_rows(x).index_select(0, flat).view(pix.numel(), -1)
    assert torch.equal(out, exp)
    assert (exp == 0).any() == (k > 1)  # taps outside the input


@needs_cc
def test_scatter_writes_rows_into_nchw_columns():
    g = torch.Generator().manual_seed(0)
    out = torch.randn(3, 21, 40, generator=g)
    pix = torch.tensor([0, 5, 39, 40, 77, 119])
    rows = torch.randn(6, 21, generator=g)
    exp = out.clone()
    for m, q in enumerate(pix.tolist()):
        exp[q // 40, :, q % 40] = rows[m]
    assert native.scatter_rows(rows, pix, out) is out
    assert torch.equal(out, exp)


@needs_cc
def test_bad_arguments_are_refused_before_the_c_code_runs():
    x, pix, dil, h_out, w_out = _case(1)
    c = x.shape[1]
    buf = torch.empty(pix.numel(), 9 * c)
    bad_pix = pix.clone()
    bad_pix[-1] = 2 * h_out * w_out
    with pytest.raises(ValueError, match=r'pix values must be in \[0, 198'
                       r'\), got \[\d+, 198\]'):
        native.gather_taps(x, bad_pix, dil, h_out, w_out, 3, 1, buf)
    with pytest.raises(ValueError, match='dil values must be >= 1'):
        native.gather_taps(x, pix, dil * 0, h_out, w_out, 3, 1, buf)
    with pytest.raises(ValueError, match=r'out must be \[M, k\*k\*C\]'):
        native.gather_taps(x, pix, dil, h_out, w_out, 3, 1, buf[1:])
    with pytest.raises(ValueError, match=r'contiguous float32 CPU tensors, '
                       r'got x \[2, 37, 9, 11\] torch.float64 on cpu,'):
        native.gather_taps(x.double(), pix, dil, h_out, w_out, 3, 1, buf)
    with pytest.raises(ValueError, match=r'got x \[2, 37, 11, 9\] '
                       r'torch.float32 on cpu \(not contiguous\)'):
        native.gather_taps(x.transpose(2, 3), pix, dil, w_out, h_out, 3, 1,
                           buf)
    with pytest.raises(ValueError, match='int64 .* got pix .* torch.int32'):
        native.gather_taps(x, pix.int(), dil, h_out, w_out, 3, 1, buf)
    with pytest.raises(ValueError, match='do not fit'):
        native.gather_taps(x, pix, dil, h_out + 1, w_out, 3, 1, buf)
    out = torch.zeros(2, c, h_out * w_out)
    with pytest.raises(ValueError, match=r'pix values must be in'):
        native.scatter_rows(torch.zeros(pix.numel(), c), bad_pix, out)
    with pytest.raises(ValueError, match=r'rows \[M, C\] and out'):
        native.scatter_rows(torch.zeros(pix.numel(), c + 1), pix, out)


@needs_cc
def test_built_once_then_loaded_from_the_cache(fresh, monkeypatch):
    calls = []
    run = native.subprocess.run

    def spy(cmd, *a, **kw):
        calls.append(cmd)
        return run(cmd, *a, **kw)

    monkeypatch.setattr(native.subprocess, 'run', spy)
    assert native.available()
    assert native.status().startswith('in use')
    (lib, ) = fresh.glob('hard_gather-*.so')  # nothing half-written left
    assert sum('-shared' in c for c in calls) == 1
    native.reset()  # a new process
    assert native.available() and sum('-shared' in c for c in calls) == 1
    assert list(fresh.glob('*')) == [lib]


@needs_cc
def test_a_wrong_kernel_is_caught_by_the_check_and_not_used(
        fresh, monkeypatch, tmp_path):
    """An off-by-one in the C code: the check in this process refuses it,
    warns once, and the hard path runs its torch-op version (still equal
    to the reference)."""
    src = native.SOURCE.read_text()
    bad = src.replace('dst[c] = src[c * plane];',
                      'dst[c] = src[c * plane + 1];')
    assert bad != src
    path = tmp_path / 'hard_gather.c'
    path.write_text(bad)
    monkeypatch.setattr(native, 'SOURCE', path)
    with pytest.warns(RuntimeWarning, match='gather differs'):
        assert not native.available()
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # warned once, not per call
        assert not native.available()
    assert native.status().startswith('not used: gather differs')
    with pytest.raises(RuntimeError, match='not available: not used'):
        native.scatter_rows(torch.zeros(1, 2), torch.zeros(1, dtype=int),
                            torch.zeros(1, 2, 1))
    _sparse_matches_reference()


def test_no_compiler_or_opt_out_falls_back(fresh, monkeypatch):
    monkeypatch.setenv('CC', str(fresh / 'no-such-cc'))
    with pytest.warns(RuntimeWarning, match='not used'):
        assert not native.available()
    assert native.status().startswith('not used: FileNotFoundError')
    _sparse_matches_reference()
    native.reset()
    monkeypatch.setenv('PAD_MM_NATIVE', '0')
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # an opt-out does not warn
        assert not native.available()
    assert native.status() == 'disabled by PAD_MM_NATIVE=0'


@needs_cc
def test_disabled_switches_the_hard_path_to_torch_ops_for_a_block(
        monkeypatch):
    calls = []
    fn = native.gather_taps
    monkeypatch.setattr(native, 'gather_taps', lambda *a: (
        calls.append(1), fn(*a))[1])
    assert native.available()
    with native.disabled():
        assert not native.available()
        assert native.status().startswith('disabled in this block')
        _sparse_matches_reference()
        with pytest.raises(RuntimeError, match='disabled in this block'):
            native.scatter_rows(torch.zeros(1, 2),
                                torch.zeros(1, dtype=torch.long),
                                torch.zeros(1, 2, 1))
    assert calls == [] and native.available()
    _sparse_matches_reference()
    assert calls == [1]


def _sparse_matches_reference():
    """The sparse strategy in float32 inference equals the reference."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 12, 40, 52, generator=g)
    w, b = torch.randn(10, 12, 3, 3, generator=g), torch.randn(10)
    index = torch.zeros(2, 40, 52, dtype=torch.long)
    index[0, 3:9, 40:] = 2
    index[1, 30:, :6] = 1
    with torch.no_grad():
        out = hard_im2col.pad_conv2d_hard_im2col(x, w, b, index, (1, 2, 4),
                                                 strategy='sparse')
        ref = pad_conv2d_hard_reference(x, w, b, index, (1, 2, 4))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


@needs_cc
@pytest.mark.parametrize('case,used', [('nchw', True), ('grad', False),
                                       ('channels_last', False),
                                       ('float64', False), ('full', False)])
def test_the_hard_path_uses_it_only_in_float32_nchw_sparse_inference(
        monkeypatch, case, used):
    calls = []
    for name in ('gather_taps', 'scatter_rows'):
        fn = getattr(native, name)
        monkeypatch.setattr(native, name, lambda *a, fn=fn, name=name: (
            calls.append(name), fn(*a))[1])
    g = torch.Generator().manual_seed(4)
    dtype = torch.float64 if case == 'float64' else torch.float32
    x = torch.randn(2, 8, 40, 52, generator=g, dtype=dtype)
    if case == 'channels_last':
        x = x.to(memory_format=torch.channels_last)
    w = torch.randn(8, 8, 3, 3, generator=g, dtype=dtype)
    b = torch.randn(8, generator=g, dtype=dtype)
    index = torch.zeros(2, 40, 52, dtype=torch.long)
    index[:, 10:14, 20:30] = 1
    if case == 'grad':
        x.requires_grad_()
    out = hard_im2col.pad_conv2d_hard_im2col(
        x, w, b, index, (1, 2, 4),
        strategy='full' if case == 'full' else 'sparse')
    ref = pad_conv2d_hard_reference(x, w, b, index, (1, 2, 4))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert calls == (['gather_taps', 'scatter_rows'] if used else [])
