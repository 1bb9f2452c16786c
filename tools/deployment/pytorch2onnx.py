"""Export a PAD (or any mmseg / mmpretrain) model to ONNX, optionally
checked against onnxruntime.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out FILE \
        [--shape H W] [--opset 17] [--verify] [--atol 1e-4]

Exports ``model(image, mode='tensor')`` (segmentation: the logits
[N, num_classes, H/4, W/4] before resizing; classification: the class
scores [N, num_classes]) with every PAD layer in hard eval mode
(``eval_mode='hard'``), through ``torch.onnx.export(..., dynamo=False)``.
Input ``input`` [N, 3, H, W] (already normalised, as after the data
preprocessor), output ``output``; the batch axis is dynamic. PAD layers
run their export-safe implementation while tracing (``impl='auto'``
picks it).

``--verify`` checks the file with ``onnx.checker`` and runs it in
onnxruntime (CPU) on two seeded random images (the export input and
another one), comparing with PyTorch: it fails (exit status 1) when the
largest absolute difference exceeds ``--atol``. Needs ``onnx`` and
``onnxruntime`` (``pip install onnx onnxruntime``).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from pad_mm.apis import load_config, load_model  # noqa: E402
from pad_mm.models import PADConv2d  # noqa: E402
from pad_mm.registry import task_of  # noqa: E402
from pad_mm.apis.validate import (PADConfigError,  # noqa: E402
                                     PADConfigFileError)
from pad_mm.utils import run_tool  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a model to ONNX')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='ONNX file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size; default: the data preprocessor '
                        'size / crop_size (seg) or 224 x 224 (cls)')
    parser.add_argument('--opset', type=int, default=17,
                        help='ONNX opset (default 17)')
    parser.add_argument('--verify', action='store_true',
                        help='check the export against onnxruntime')
    parser.add_argument('--atol', type=float, default=1e-4,
                        help='largest allowed |onnxruntime - PyTorch| '
                        '(default 1e-4)')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of a config error')
    return parser.parse_args(argv)


class TensorOutput(nn.Module):
    """``model(x, mode='tensor')`` as a plain ``forward(x)`` (the last
    output when the model returns several)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x, mode='tensor')
        if isinstance(out, (list, tuple)):
            out = out[-1]
        return out


def export(config: str, checkpoint: str, out: str, shape=None,
           opset: int = 17) -> tuple[nn.Module, torch.Tensor]:
    """Write ``out``; returns the exported module and its example input."""
    if not osp.isfile(checkpoint):
        raise PADConfigFileError('checkpoint', checkpoint, 'an existing file',
                                 'no such file')
    if not out.endswith('.onnx'):
        raise PADConfigError('--out', out, 'a path ending in .onnx')
    cfg = load_config(config)
    model, cfg = load_model(cfg, checkpoint)
    for m in model.modules():
        if isinstance(m, PADConv2d):
            m.eval_mode = 'hard'
    if shape is None:
        if task_of(cfg) == 'cls':
            shape = (224, 224)
        else:
            shape = tuple(cfg.model.get('data_preprocessor', {}).get('size')
                          or cfg.get('crop_size') or (512, 512))
    wrapper = TensorOutput(model).eval()
    x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(wrapper, (x, ), out, dynamo=False,
                          input_names=['input'], output_names=['output'],
                          dynamic_axes={'input': {0: 'batch'},
                                        'output': {0: 'batch'}},
                          opset_version=opset)
    return wrapper, x


def verify(path: str, wrapper: nn.Module, x: torch.Tensor,
           atol: float) -> float:
    """Largest |onnxruntime - PyTorch| over the export input and a second
    seeded input; raises AssertionError above ``atol``."""
    import onnx
    import onnxruntime as ort
    onnx.checker.check_model(onnx.load(path))
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    inputs = [x, torch.randn(x.shape,
                             generator=torch.Generator().manual_seed(1))]
    worst = 0.0
    for inp in inputs:
        with torch.no_grad():
            ref = wrapper(inp)
        got = torch.from_numpy(sess.run(None, {'input': inp.numpy()})[0])
        if got.shape != ref.shape:
            raise AssertionError(f'onnxruntime output shape '
                                 f'{tuple(got.shape)} != PyTorch '
                                 f'{tuple(ref.shape)}')
        worst = max(worst, float((got - ref).abs().max()))
    if worst > atol:
        raise AssertionError(f'onnxruntime differs from PyTorch by up to '
                             f'{worst:.3g} > --atol {atol:g}')
    return worst


def main(argv=None) -> dict:
    args = parse_args(argv)
    wrapper, x = export(args.config, args.checkpoint, args.out, args.shape,
                        args.opset)
    result = dict(out=args.out, input_shape=list(x.shape))
    print(f'wrote {args.out} (input {tuple(x.shape)}, opset {args.opset}, '
          'PAD layers hard)')
    if args.verify:
        try:
            worst = verify(args.out, wrapper, x, args.atol)
        except AssertionError as exc:
            print(f'verify FAILED: {exc}', file=sys.stderr)
            raise SystemExit(1) from None
        result['max_abs_diff'] = worst
        print(f'verify: onnxruntime matches PyTorch on 2 inputs, max |diff| '
              f'= {worst:.3g} <= {args.atol:g}')
    return result


if __name__ == '__main__':
    run_tool(main)
