"""Export: a PAD model in hard and soft eval modes runs in onnxruntime (CPU)
and through torch.jit.trace / torch.export with the PyTorch output."""
import pytest
import torch
from mmengine.registry import init_default_scope

import pad_mm.seg  # noqa: F401  (registers pad_mm for mmseg)
from pad_mm.models import PADConv2d, convert_to_pad

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')


class _Net(torch.nn.Module):
    """A slim ResNet-18 V1c with a gated PAD chain over layer3 and layer4
    (stride-2 PAD layer included) and random priors, so that neighbouring
    pixels choose different dilations."""

    def __init__(self, eval_mode):
        super().__init__()
        from mmseg.models.backbones import ResNetV1c
        init_default_scope('mmseg')
        torch.manual_seed(0)
        net = ResNetV1c(depth=18, stem_channels=8, base_channels=8,
                        strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))
        net.init_weights()
        self.net = convert_to_pad(net, dict(
            layers=['layer3.*.conv1', 'layer3.*.conv2', 'layer4.*.conv2'],
            dilations=(1, 2, 4), aggregation='gated', eval_mode=eval_mode,
            act_cfg=dict(type='Tanh')))
        with torch.no_grad():
            for m in self.net.modules():
                if isinstance(m, PADConv2d) and m.adaptive:
                    for p in m.prior.parameters():
                        p.normal_(0, 2.0)
        self.eval()

    def forward(self, x):
        return self.net(x)[-1]


def _decisions(model, x):
    """Per-pixel logits of every PAD layer (to check the choices vary)."""
    seen = []
    hooks = [m.probe.register_forward_hook(
        lambda mod, inp, out: seen.append(inp[0].detach()))
        for m in model.modules() if isinstance(m, PADConv2d) and m.adaptive]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize('eval_mode', ['hard', 'soft'])
def test_onnx_export_matches_pytorch(tmp_path, eval_mode):
    model = _Net(eval_mode)
    x = torch.randn(2, 3, 48, 40)
    logits = _decisions(model, x)
    assert len(logits) == 6
    # the dilation choice really varies from pixel to pixel
    assert any(len(torch.unique(lg.argmax(1))) > 1 for lg in logits)
    with torch.no_grad():
        ref = model(x)
    path = tmp_path / f'pad_{eval_mode}.onnx'
    torch.onnx.export(model, (x, ), str(path), dynamo=False,
                      input_names=['input'], output_names=['output'],
                      opset_version=17)
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path),
                                providers=['CPUExecutionProvider'])
    out = sess.run(None, {'input': x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(out), ref, rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize('eval_mode', ['hard', 'soft'])
def test_jit_trace_and_torch_export(eval_mode):
    model = _Net(eval_mode)
    x = torch.randn(1, 3, 40, 40)
    traced = torch.jit.trace(model, (x, ), check_trace=False)
    y = torch.randn(1, 3, 40, 40)  # a new input through the trace
    with torch.no_grad():
        ref = model(y)
        torch.testing.assert_close(traced(y), ref, rtol=1e-5, atol=1e-5)
    exported = torch.export.export(model, (x, ))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(y), ref, rtol=1e-5,
                                   atol=1e-5)
