"""The Triton kernels on a real GPU (skip without CUDA or triton).

Imports torch and pad_mm.ops only (no OpenMMLab), so it runs on a GPU
machine with torch and triton alone. Shapes cross the kernels' tile sizes
(64 pixels x 64 output channels x 32 input channels)."""
import pytest
import torch

from pad_mm.ops import (HAS_TRITON, dispatch, pad_conv2d, pad_conv2d_hard,
                        pad_conv2d_reference, select_impl, triton_pad)

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason='needs a CUDA GPU'),
    pytest.mark.skipif(not HAS_TRITON, reason='triton is not installed'),
]

DIL = (1, 2, 4)
CONFIGS = [  # c_in, c_out, groups, size, stride
    (80, 96, 1, (13, 17), 1),
    (80, 96, 1, (13, 17), 2),
    (96, 64, 4, (11, 9), 1),
    (64, 64, 64, (13, 17), 2),  # depthwise
]


def _case(c_in, c_out, groups, size, stride, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c_in, *size, generator=g, dtype=torch.float64)
    w = torch.randn(c_out, c_in // groups, 3, 3, generator=g,
                    dtype=torch.float64) / (c_in // groups * 9)**0.5
    b = torch.randn(c_out, generator=g, dtype=torch.float64)
    ho, wo = (size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1
    lg = torch.randn(2, 3, ho, wo, generator=g, dtype=torch.float64)
    return [t.to(dtype).double() for t in (x, w, b)] + [lg]


def _grads(fn, x, w, b, lg, dtype, channels_last, device, stride, groups):
    xd = x.to(device, dtype)
    if channels_last:
        xd = xd.contiguous(memory_format=torch.channels_last)
    leaves = [xd.requires_grad_()] + [t.to(device, dtype).requires_grad_()
                                      for t in (w, b)]
    lgd = lg.to(device).requires_grad_()
    p = torch.softmax(lgd, 1).to(dtype)
    out = fn(*leaves, p, DIL, stride, groups)
    go = torch.randn(out.shape, generator=torch.Generator().manual_seed(1),
                     dtype=torch.float64).to(device, out.dtype)
    return [out] + list(torch.autograd.grad(out, leaves + [lgd], go))


@pytest.mark.parametrize('cfg', CONFIGS)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16,
                                   torch.bfloat16])
@pytest.mark.parametrize('channels_last', [False, True])
def test_triton_matches_reference(cfg, dtype, channels_last):
    c_in, c_out, groups, size, stride = cfg
    x, w, b, lg = _case(c_in, c_out, groups, size, stride, dtype)
    tol = {torch.float32: 5e-3, torch.float16: 5e-3,
           torch.bfloat16: 3e-2}[dtype]  # fp32 may use TF32
    exp = _grads(pad_conv2d_reference, x, w, b, lg, torch.float64, False,
                 'cpu', stride, groups)
    got = _grads(lambda *a: pad_conv2d(*a, impl='triton'), x, w, b, lg,
                 dtype, channels_last, 'cuda', stride, groups)
    assert got[0].is_contiguous(
        memory_format=torch.channels_last) == channels_last
    for name, a, e in zip(['out', 'gx', 'gw', 'gb', 'gp'], got, exp):
        err = ((a.double().cpu() - e).abs().max() / e.abs().max()).item()
        assert err < tol, (name, err)


def test_self_check_passes_and_auto_only_picks_checked():
    dispatch.reset_dispatch_state()
    for dtype in (torch.float32, torch.bfloat16):
        for hard, fn in ((False, triton_pad.pad_conv2d_triton),
                         (True, triton_pad.pad_conv2d_hard_triton)):
            errors = dispatch.self_check(fn, 'cuda', dtype, hard=hard,
                                         supports=triton_pad.supports)
            assert max(errors.values()) < dispatch.CHECK_TOL[dtype]
    x = torch.randn(2, 64, 32, 32, device='cuda', dtype=torch.bfloat16)
    w = torch.randn(64, 64, 3, 3, device='cuda', dtype=torch.bfloat16)
    p = torch.rand(2, 3, 32, 32, device='cuda')
    name = select_impl(x, w, p, DIL, 1, 1)
    checks = dispatch.dispatch_report()['checks']
    if name == 'triton':
        assert any(c['passed'] and c['impl'] == 'triton' for c in checks)
    index = p.argmax(1)
    out = pad_conv2d_hard(x, w, None, index, DIL)
    ref = pad_conv2d_hard(x.double(), w.double(), None, index, DIL,
                          impl='reference')
    assert ((out.double() - ref).abs().max() / ref.abs().max()) < 3e-2


def test_amp_fp32_weights_take_the_kernels_and_get_fp32_grads():
    x = torch.randn(2, 64, 13, 17, device='cuda')
    w = (torch.randn(96, 64, 3, 3, device='cuda') / 24).requires_grad_()
    b = torch.randn(96, device='cuda').requires_grad_()
    p = torch.softmax(torch.randn(2, 3, 13, 17, device='cuda'), 1)
    with torch.autocast('cuda', dtype=torch.bfloat16):
        assert select_impl(x, w, p, DIL, 1, 1, impl='triton') == 'triton'
        out = pad_conv2d(x, w, b, p, DIL, impl='triton')
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert w.grad.dtype == torch.float32 and b.grad.dtype == torch.float32


def test_launch_on_the_inputs_device():
    if torch.cuda.device_count() < 2:
        pytest.skip('needs two GPUs')
    x = torch.randn(1, 32, 9, 9, device='cuda:1')
    w = torch.randn(32, 32, 3, 3, device='cuda:1') / 17
    p = torch.softmax(torch.randn(1, 3, 9, 9, device='cuda:1'), 1)
    with torch.cuda.device(0):
        out = pad_conv2d(x, w, None, p, DIL, impl='triton')
    ref = pad_conv2d_reference(x.double(), w.double(), None, p.double(), DIL)
    assert out.device == x.device
    assert ((out.double() - ref).abs().max() / ref.abs().max()) < 5e-3


def test_gradcheck_float64_through_auto():
    x = torch.randn(1, 3, 5, 6, device='cuda', dtype=torch.float64,
                    requires_grad=True)
    w = torch.randn(4, 3, 3, 3, device='cuda', dtype=torch.float64,
                    requires_grad=True)
    p = torch.softmax(torch.randn(1, 3, 3, 3, device='cuda',
                                  dtype=torch.float64), 1).requires_grad_()
    assert select_impl(x, w, p, DIL, 2, 1) == 'reference'  # no fp64 kernel
    assert torch.autograd.gradcheck(
        lambda *a: pad_conv2d(a[0], a[1], None, a[2], DIL, 2), (x, w, p))


def test_cuda_graph_capture_with_dilations_first_seen_inside_it():
    """The dilation tensor of a dilation set first seen during a capture is
    filled on the device (no host-to-device copy, which a capture
    forbids), and the replayed graph computes the right values."""
    dil = (3, 5, 7)  # used nowhere else in this process
    x = torch.randn(2, 64, 13, 17, device='cuda')
    w = torch.randn(64, 64, 3, 3, device='cuda') / 24
    p = torch.softmax(torch.randn(2, 3, 13, 17, device='cuda'), 1)
    # warm up (compiles) on another stream, without this dilation set
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        pad_conv2d(x, w, None, p, (1, 2, 4), impl='triton')
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = pad_conv2d(x, w, None, p, dil, impl='triton')
    x.copy_(torch.randn_like(x))
    graph.replay()
    ref = pad_conv2d_reference(x.double(), w.double(), None, p.double(),
                               dil)
    assert ((out.double() - ref).abs().max() / ref.abs().max()) < 5e-3


def test_oom_in_a_checked_kernel_is_raised(monkeypatch):
    """A real CUDA OOM (an impossible allocation) inside the guarded call
    is raised as OutOfMemoryError and the kernel stays usable."""
    from pad_mm.ops import dispatcher
    x = torch.randn(2, 64, 32, 32, device='cuda', dtype=torch.bfloat16)
    w = torch.randn(64, 64, 3, 3, device='cuda', dtype=torch.bfloat16)
    p = torch.softmax(torch.randn(2, 3, 32, 32, device='cuda'), 1)
    with dispatcher.isolated():
        entry = dispatcher.entry('triton')
        armed = []

        def hungry(*args):
            if armed:
                torch.empty(1 << 50, device='cuda')  # 1 PiB
            return entry.fn(*args)

        dispatcher.register('triton', hungry, entry.supports,
                            prefer=entry.prefer, checked=True,
                            check_context=entry.check_context)
        monkeypatch.setattr(dispatcher, 'min_gain', -1e9)  # always pick
        assert select_impl(x, w, p, DIL, 1, 1) == 'triton'
        armed.append(1)
        with pytest.raises(torch.OutOfMemoryError):
            pad_conv2d(x, w, None, p, DIL)
        assert dispatcher.check_status('triton', x, w, p, DIL, 1,
                                       1) == 'passed'
