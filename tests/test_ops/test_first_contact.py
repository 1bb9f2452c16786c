"""First-contact fixes that need no GPU (issue 27, section 1): the TF32
flag the fp32 kernels follow, no silent double backward, no host-to-device
copy during a CUDA-graph capture; and the one implementation contract and
output-size helper."""
import inspect
import os
import subprocess
import sys
import types

import pytest
import torch

from pad_mm.ops import (PADImpl, conv_out_size, dispatcher, implements,
                        pad_conv2d, pad_conv2d_im2col, pad_conv2d_reference,
                        pad_padding, tf32_enabled, triton_pad)
from pad_mm.ops import calls
from pad_mm.ops.impls import base

DIL = (1, 2, 4)


# ------------------------------------------------------------------ TF32 ---


@pytest.fixture
def tf32_flags():
    """The real backend flags, restored afterwards."""
    names = [(torch.backends, 'fp32_precision'),
             (torch.backends.cudnn, 'fp32_precision'),
             (torch.backends.cudnn.conv, 'fp32_precision'),
             (torch.backends.cudnn.rnn, 'fp32_precision')]
    if not all(hasattr(o, a) for o, a in names):
        pytest.skip('torch without the fp32_precision API')
    saved = [getattr(o, a) for o, a in names]
    yield
    for (o, a), v in zip(names, saved):
        setattr(o, a, v)


def test_tf32_follows_cudnn_conv_precision_on_this_torch(tf32_flags):
    """torch >= 2.9: cudnn.allow_tf32 = False leaves the conv precision
    'none' all the way up, which cuDNN runs as IEEE; the fp32 kernels must
    not use TF32 then (they did: 'none' was read as TF32)."""
    torch.backends.cudnn.allow_tf32 = False
    assert torch.backends.cudnn.conv.fp32_precision == 'none'
    assert not tf32_enabled()
    torch.backends.cudnn.allow_tf32 = True
    assert tf32_enabled()
    torch.backends.cudnn.conv.fp32_precision = 'ieee'
    assert not tf32_enabled()
    torch.backends.cudnn.conv.fp32_precision = 'tf32'
    assert tf32_enabled()


def _fake_backends(monkeypatch, conv, cudnn, generic):
    monkeypatch.setattr(torch, 'backends', types.SimpleNamespace(
        fp32_precision=generic,
        cudnn=types.SimpleNamespace(
            fp32_precision=cudnn, allow_tf32=None,
            conv=types.SimpleNamespace(fp32_precision=conv))))


@pytest.mark.parametrize('conv,cudnn,generic,expected', [
    ('tf32', 'ieee', 'ieee', True),
    ('ieee', 'tf32', 'tf32', False),
    ('none', 'tf32', 'ieee', True),
    ('none', 'ieee', 'tf32', False),
    ('none', 'none', 'tf32', True),
    ('none', 'none', 'ieee', False),
    ('none', 'none', 'none', False),  # cuDNN's default resolution: IEEE
])
def test_tf32_resolution_of_none(monkeypatch, conv, cudnn, generic,
                                 expected):
    _fake_backends(monkeypatch, conv, cudnn, generic)
    assert tf32_enabled() is expected


@pytest.mark.parametrize('allow', [True, False])
def test_tf32_on_a_torch_without_fp32_precision(monkeypatch, allow):
    monkeypatch.setattr(torch, 'backends', types.SimpleNamespace(
        cudnn=types.SimpleNamespace(allow_tf32=allow)))
    assert tf32_enabled() is allow


# ------------------------------------------------------- double backward ---


def _case(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 6, 6, generator=g, dtype=dtype,
                    requires_grad=True)
    w = torch.randn(4, 4, 3, 3, generator=g, dtype=dtype,
                    requires_grad=True)
    p = torch.softmax(torch.randn(1, 3, 6, 6, generator=g, dtype=dtype), 1)
    return x, w, p


def _double_backward(fn):
    """d/dx of sum(grad_w^2): nonzero, since grad_w depends on x."""
    x, w, p = _case()
    out = fn(x, w, None, p, DIL)
    (gw, ) = torch.autograd.grad(out.pow(2).sum(), w, create_graph=True)
    return torch.autograd.grad(gw.pow(2).sum() + x.sum(), x)[0]


def test_reference_double_backward_is_the_ground_truth():
    x, w, p = _case()
    g = _double_backward(pad_conv2d_reference)
    assert not torch.allclose(g, torch.ones_like(g))  # a real 2nd term


def test_im2col_double_backward_raises():
    with pytest.raises(RuntimeError, match=r'double backward \(create_'):
        _double_backward(pad_conv2d_im2col)


def test_guarded_double_backward_raises_instead_of_dropping_terms(
        monkeypatch):
    """A checked implementation runs inside the guard's autograd Function:
    its backward ran the inner graph without create_graph, so the second
    order term silently vanished (the result equalled ones)."""
    with dispatcher.isolated():
        dispatcher.set_auto_order(['reference'])
        dispatcher.register('fake', pad_conv2d_reference, lambda *a: True,
                            prefer=lambda *a: True, checked=True)
        monkeypatch.setattr(dispatcher, 'time_call',
                            lambda name, run, dev: (run(), 1.0 if name ==
                                                    'reference' else 0.5)[1])
        x, w, p = _case()
        assert dispatcher.select(x, w, p, DIL, 1, 1) == 'fake'
        with pytest.raises(RuntimeError, match='double backward'):
            _double_backward(pad_conv2d)


_TRITON_DOUBLE_BACKWARD = """
import torch
from pad_mm.ops import pad_conv2d
x = torch.randn(1, 4, 5, 5, requires_grad=True)
w = torch.randn(4, 4, 3, 3, requires_grad=True)
p = torch.softmax(torch.randn(1, 3, 5, 5), 1)
out = pad_conv2d(x, w, None, p, (1, 2, 4), impl='triton')
try:
    torch.autograd.grad(out.pow(2).sum(), w, create_graph=True)
except RuntimeError as e:
    assert 'double backward' in str(e), e
    print('raised')
"""


@pytest.mark.skipif(not triton_pad.HAS_TRITON, reason='no triton')
def test_triton_double_backward_raises(repo_root):
    env = dict(os.environ, TRITON_INTERPRET='1', PYTHONPATH=repo_root)
    out = subprocess.run([sys.executable, '-c', _TRITON_DOUBLE_BACKWARD],
                         capture_output=True, text=True, env=env,
                         cwd=repo_root, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ['raised']


# --------------------------------------------------- CUDA-graph capture ---


def test_dilation_tensor_makes_no_host_to_device_copy(monkeypatch):
    """The dilations go to the device by fills (kernels with a scalar
    argument, recorded by a CUDA graph), never by a host tensor copy;
    inside a capture the tensor is not cached (the fills only run at
    replay)."""

    def no_host_tensor(*a, **kw):
        raise AssertionError('torch.tensor(...) copies from the host')

    monkeypatch.setattr(torch, 'tensor', no_host_tensor)
    monkeypatch.setattr(calls, 'capturing', lambda dev: True)
    dil = (3, 5, 7, 11)
    t = triton_pad.dil_tensor(dil, torch.device('cpu'))
    assert t.dtype == torch.int32 and t.tolist() == list(dil)
    assert triton_pad.dil_tensor(dil, torch.device('cpu')) is not t
    monkeypatch.setattr(calls, 'capturing', lambda dev: False)
    t = triton_pad.dil_tensor(dil, torch.device('cpu'))
    assert triton_pad.dil_tensor(dil, torch.device('cpu')) is t  # cached


# ---------------------------------------------------- contract and shapes ---


def test_every_registered_implementation_follows_the_contract():
    names = [p.name for p in inspect.signature(
        PADImpl.__call__).parameters.values()][1:]
    assert names == ['input', 'weight', 'bias', 'sel', 'dilations',
                     'stride', 'groups']
    for hard in (False, True):
        for name in dispatcher.names(hard):
            fn = dispatcher.entry(name, hard).fn
            assert isinstance(fn, PADImpl)
            assert implements(fn) is fn  # the signature check passes
            params = list(inspect.signature(fn).parameters)
            assert params[3] == ('index' if hard else 'probs'), name


def test_implements_rejects_another_signature():

    def wrong(input, weight, probs, bias, dilations, stride=1, groups=1):
        return input

    def no_default(input, weight, bias, probs, dilations, stride, groups):
        return input

    def extra(input, weight, bias, probs, dilations, stride=1, groups=1,
              mode=None):
        return input

    for fn in (wrong, no_default):
        with pytest.raises(TypeError, match='PADImpl contract'):
            implements(fn)
    assert implements(extra) is extra
    assert base.CONTRACT_PARAMS[3] == ('probs', 'index')


@pytest.mark.parametrize('size,k,stride,dilation,padding', [
    (9, 3, 1, 1, None), (9, 3, 2, 4, None), (64, 5, 3, 2, None),
    (1, 3, 1, 8, None), (10, 3, 2, 1, 0), (7, 1, 1, 1, 0), (33, 7, 2, 3, 5)])
def test_conv_out_size_equals_conv2d(size, k, stride, dilation, padding):
    pad = pad_padding(k, dilation) if padding is None else padding
    out = torch.nn.functional.conv2d(torch.zeros(1, 1, size, size),
                                     torch.zeros(1, 1, k, k), None, stride,
                                     pad, dilation)
    assert conv_out_size(size, k, stride, dilation, padding) == \
        out.shape[-1]
    if padding is None:
        assert conv_out_size(size, k, stride, dilation) == \
            (size - 1) // stride + 1


@pytest.mark.parametrize('kw,match', [
    (dict(size=-1), 'size must be an int >= 0'),
    (dict(k=0), 'k must be an int >= 1'),
    (dict(stride=0), 'stride must be an int >= 1'),
    (dict(dilation=True), 'dilation must be an int >= 1'),
    (dict(padding=-1), 'padding must be an int >= 0 or None')])
def test_conv_out_size_rejects_bad_values(kw, match):
    args = dict(size=8, k=3, stride=1, dilation=1, padding=None)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        conv_out_size(**args)
