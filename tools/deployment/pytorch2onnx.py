"""Export a PAD (or any mmseg / mmpretrain) model to ONNX, optionally
checked against onnxruntime.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out FILE \
        [--shape H W] [--opset 17] [--verify] [--atol 1e-4]

Exports ``model(image, mode='tensor')`` with every PAD layer in hard eval
mode (``eval_mode='hard'``), through ``torch.onnx.export(...,
dynamo=False)``. Input ``input`` [N, 3, H, W] (already normalised, as
after the data preprocessor), output ``output``: for segmentation the
logits before resizing, [N, num_classes, H_out, W_out] at the model's
output stride (1/4 for DeepLabV3+: ceil(H / 4) x ceil(W / 4) for the
ResNet stem), for classification the class scores [N, num_classes]. The
batch, height and width axes are dynamic: the file runs at any input size
(``--shape`` only sets the example that is traced, which also decides
which hard-PAD graph is recorded, see ``pad_mm.ops.impls.export_hard``).
PAD layers run their export-safe implementation while tracing
(``impl='auto'`` picks it).

``--verify`` checks the file with ``onnx.checker`` and runs it in
onnxruntime (CPU) on seeded random images: the export input, another one
of its size, and one at each ``--verify-shapes`` size (default: two more
sizes, one of them odd), comparing with PyTorch: it fails (exit status 1)
when the largest absolute difference exceeds ``--atol``. Needs ``onnx``
and ``onnxruntime`` (``pip install onnx onnxruntime``).
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

from pad_mm.apis import (default_input_shape, load_config,  # noqa: E402
                         load_model)
from pad_mm.models import set_eval_mode  # noqa: E402
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
    parser.add_argument('--verify-shapes', type=int, nargs='+',
                        metavar='H W',
                        help='further input sizes --verify runs, as H W '
                        'pairs; default: 2x the export size and that '
                        'size + (5, 3) (odd)')
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
    set_eval_mode(model, 'hard')
    if shape is None:
        shape = default_input_shape(cfg)
    wrapper = TensorOutput(model).eval()
    x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(wrapper, (x, ), out, dynamo=False,
                          input_names=['input'], output_names=['output'],
                          dynamic_axes=dynamic_axes(wrapper, x),
                          opset_version=opset)
    return wrapper, x


def dynamic_axes(wrapper: nn.Module, x: torch.Tensor) -> dict:
    """Batch, height and width of the input are dynamic; so are the
    output's batch and, for a map (segmentation), its height and width."""
    with torch.no_grad():
        out = wrapper(x)
    axes = {'input': {0: 'batch', 2: 'height', 3: 'width'},
            'output': {0: 'batch'}}
    if out.dim() == 4:
        axes['output'].update({2: 'out_height', 3: 'out_width'})
    return axes


def verify_shapes(shape, extra=None) -> list[tuple[int, int]]:
    """The further sizes to verify: ``extra`` (a flat H W list) or 2x the
    export size and the export size + (5, 3)."""
    if extra:
        if len(extra) % 2:
            raise PADConfigError('--verify-shapes', extra,
                                 'H W pairs (an even number of ints)')
        return [(extra[i], extra[i + 1]) for i in range(0, len(extra), 2)]
    h, w = shape
    return [(2 * h, 2 * w), (h + 5, w + 3)]


def verify(path: str, wrapper: nn.Module, x: torch.Tensor,
           atol: float, shapes=()) -> float:
    """Largest |onnxruntime - PyTorch| over the export input, a second
    seeded input of its size and one seeded input at each of ``shapes``
    (H, W); raises AssertionError above ``atol`` or on a shape mismatch."""
    import onnx
    import onnxruntime as ort
    onnx.checker.check_model(onnx.load(path))
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    inputs = [x] + [
        torch.randn(x.shape[:2] + tuple(hw) if hw else x.shape,
                    generator=torch.Generator().manual_seed(1 + i))
        for i, hw in enumerate([None] + list(shapes))]
    worst = 0.0
    for inp in inputs:
        with torch.no_grad():
            ref = wrapper(inp)
        got = torch.from_numpy(sess.run(None, {'input': inp.numpy()})[0])
        if got.shape != ref.shape:
            raise AssertionError(f'input {tuple(inp.shape)}: onnxruntime '
                                 f'output shape {tuple(got.shape)} != '
                                 f'PyTorch {tuple(ref.shape)}')
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
    print(f'wrote {args.out} (example input {tuple(x.shape)}; batch, height '
          f'and width dynamic; opset {args.opset}, PAD layers hard)')
    if args.verify:
        shapes = verify_shapes(tuple(x.shape[2:]), args.verify_shapes)
        try:
            worst = verify(args.out, wrapper, x, args.atol, shapes)
        except AssertionError as exc:
            print(f'verify FAILED: {exc}', file=sys.stderr)
            raise SystemExit(1) from None
        result['max_abs_diff'] = worst
        result['verified_shapes'] = [list(x.shape[2:])] + [
            list(hw) for hw in shapes]
        sizes = ', '.join(f'{h}x{w}' for h, w in result['verified_shapes'])
        print(f'verify: onnxruntime matches PyTorch on {2 + len(shapes)} '
              f'inputs ({sizes}), max |diff| = {worst:.3g} <= '
              f'{args.atol:g}')
    return result


if __name__ == '__main__':
    run_tool(main)
