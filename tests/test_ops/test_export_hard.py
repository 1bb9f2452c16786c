"""The export-friendly hard PAD (pad_mm.ops.impls.export_hard): equal to the
reference; recorded graphs (ONNX via TorchScript, torch.export) hold, on
maps of at least SPARSE_MIN_PIXELS pixels, one conv per PAD layer plus a
NonZero/Gather/MatMul/Scatter recomputation of the differing pixels, on
smaller maps a Gather/MatMul of every pixel's chosen taps and no conv;
both give PyTorch's output for new inputs of other sizes."""
import pytest
import torch
import torch.nn as nn

from pad_mm.ops import (SPARSE_MIN_PIXELS, pad_conv2d_hard,
                        pad_conv2d_hard_export, pad_conv2d_hard_reference,
                        select_impl)

# input sizes whose PAD map is below / at least SPARSE_MIN_PIXELS
SMALL, LARGE = (20, 24), (48, 48)
assert SMALL[0] * SMALL[1] < SPARSE_MIN_PIXELS <= LARGE[0] * LARGE[1]


def _index(n, h, w, share, gen, dominant=1, d=3):
    index = torch.full((n, h, w), dominant, dtype=torch.long)
    m = torch.rand(n, h, w, generator=gen) < share
    index[m] = torch.randint(0, d, (int(m.sum()), ), generator=gen)
    return index


@pytest.mark.parametrize('size', [(9, 11), (47, 45)])
@pytest.mark.parametrize('groups,stride', [(1, 1), (2, 1), (1, 2), (6, 1)])
@pytest.mark.parametrize('share', [0.0, 0.1, 0.6, 1.0])
def test_export_impl_equals_reference(groups, stride, share, size):
    """Both graphs (small maps: every pixel gathered; at least
    SPARSE_MIN_PIXELS: dominant conv + differing pixels) in eager mode."""
    gen = torch.Generator().manual_seed(0)
    h, wd = size
    x = torch.randn(2, 6, h, wd, generator=gen)
    w = torch.randn(12, 6 // groups, 3, 3, generator=gen)
    b = torch.randn(12, generator=gen)
    h_out, w_out = (h - 1) // stride + 1, (wd - 1) // stride + 1
    index = _index(2, h_out, w_out, share, gen)
    for bias in (b, None):
        ref = pad_conv2d_hard_reference(x, w, bias, index, (1, 2, 4), stride,
                                        groups)
        out = pad_conv2d_hard_export(x, w, bias, index, (1, 2, 4), stride,
                                     groups)
        assert out.shape == ref.shape and out.is_contiguous()
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_auto_never_picks_export_outside_tracing():
    x, w = torch.randn(1, 8, 6, 6), torch.randn(8, 8, 3, 3)
    index = torch.zeros(1, 6, 6, dtype=torch.long)
    assert select_impl(x, w, index, (1, 2), 1, 1, hard=True) != 'export'
    # it can be asked for by name
    out = pad_conv2d_hard(x, w, None, index, (1, 2), impl='export')
    torch.testing.assert_close(out, torch.conv2d(x, w, None, 1, 1))


class _Hard(nn.Module):
    """stem conv -> hard PAD layer (argmax of a 1x1 prior) -> ReLU."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.weight = nn.Parameter(torch.randn(16, 8, 3, 3, generator=g) / 9)
        self.bias = nn.Parameter(torch.randn(16, generator=g))
        self.prior = nn.Conv2d(8, 3, 1)
        with torch.no_grad():  # dilation 2 dominant, 1 and 4 in places
            self.prior.weight.normal_(0, 1, generator=g)
            self.prior.bias.copy_(torch.tensor([0.0, 3.0, 0.0]))

    def forward(self, x):
        x = self.stem(x)
        index = self.prior(x).argmax(1)
        return torch.relu(pad_conv2d_hard(x, self.weight, self.bias, index,
                                          (1, 2, 4)))


def _share_differing(model, x):
    with torch.no_grad():
        index = model.prior(model.stem(x)).argmax(1)
    counts = torch.bincount(index.flatten(), minlength=3)
    return 1 - counts.max().item() / index.numel()


@pytest.mark.parametrize('size', [SMALL, LARGE])
def test_onnx_graph_is_sparse_and_matches(tmp_path, size):
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    model = _Hard().eval()
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(2))
    assert 0.02 < _share_differing(model, x) < 0.9
    path = str(tmp_path / 'hard.onnx')
    torch.onnx.export(model, (x, ), path, dynamo=False, opset_version=17,
                      input_names=['input'], output_names=['output'],
                      dynamic_axes={'input': {0: 'n', 2: 'h', 3: 'w'}})
    graph = onnx.load(path).graph
    ops = [n.op_type for n in graph.node]
    if size == LARGE:
        # one conv for the stem, one for the PAD layer (not D = 3), one
        # prior; the differing pixels recomputed
        assert ops.count('Conv') == 3
        expected = ('ArgMax', 'NonZero', 'Gather', 'MatMul',
                    'ScatterElements')
    else:  # stem and prior only: the PAD layer is one gather + MatMul
        assert ops.count('Conv') == 2
        assert 'NonZero' not in ops and 'ScatterElements' not in ops
        expected = ('ArgMax', 'Gather', 'MatMul')
    for op in expected:
        assert op in ops, (op, sorted(set(ops)))
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    gen = torch.Generator().manual_seed(3)
    for inp in (x, torch.randn(2, 3, 17, 13, generator=gen),
                torch.randn(1, 3, 50, 46, generator=gen),
                torch.randn(1, 3, *size, generator=gen) * 3):
        with torch.no_grad():
            ref = model(inp)
        out = sess.run(None, {'input': inp.numpy()})[0]
        torch.testing.assert_close(torch.from_numpy(out), ref, rtol=1e-4,
                                   atol=1e-4)


@pytest.mark.parametrize('size', [SMALL, LARGE])
def test_torch_export_graph_is_sparse_and_matches(size):
    model = _Hard().eval()
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 3, *size, generator=gen)
    ep = torch.export.export(model, (x, ))
    text = str(ep.graph_module.code) + ''.join(
        str(m.code) for m in ep.graph_module.modules()
        if isinstance(m, torch.fx.GraphModule))
    if size == LARGE:
        assert 'cond' in text and 'nonzero' in text
    else:
        assert 'cond' not in text and 'nonzero' not in text
        assert 'index_select' in text and 'matmul' in text
    # stem and prior at the top level (the PAD layer's convs, if any, are
    # inside the cond branches)
    assert str(ep.graph_module.code).count('aten.conv2d.default(') == 2
    for inp in (x, torch.randn(1, 3, *size, generator=gen) * 3):
        with torch.no_grad():
            ref = model(inp)
            out = ep.module()(inp)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
