"""Exported PAD model vs exported vanilla model in onnxruntime (CPU).

    python tools/deployment/benchmark_onnx.py PAD_CONFIG VANILLA_CONFIG \
        [--pad-checkpoint CKPT] [--vanilla-checkpoint CKPT] \
        [--images IMG ...] [--size H W] [--repeats 30] [--out FILE]

Builds both models (``mode='tensor'``: backbone, neck and heads), puts
every PAD layer in ``eval_mode='hard'``, exports each with the TorchScript
ONNX exporter (``torch.onnx.export(dynamo=False)``, opset 17) and also
exports the PAD model with ``impl='reference'`` (the D-convs graph every
export recorded before the sparse export path) for comparison. Then, in
one process, it times the sessions round robin (interleaved, so load on a
shared machine hits all alike; ``--repeats`` rounds of at least ~0.1 s of
calls per session, every other round in reverse order; idle onnxruntime
threads sleep instead of spinning, so one session's pool does not slow the
next) on the same input and reports medians and ratios to the vanilla
session (paired by round: the median of the per-round ratios; the vanilla
session is timed twice per round, an A/A control, ``vanilla_again``), the
graph's Conv/NonZero node counts, the share of
pixels off each PAD layer's dominant dilation, and the max abs difference
between onnxruntime and PyTorch.

The input is the first of ``--images`` through the config's test pipeline,
or (default) a random image of ``--size``. The sparse graph records the
dominant dilation of this example input (see ``pad_mm.ops.export_hard``):
export with a representative image.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('pad_config')
    p.add_argument('vanilla_config')
    p.add_argument('--pad-checkpoint', default=None)
    p.add_argument('--vanilla-checkpoint', default=None)
    p.add_argument('--images', nargs='+', default=None)
    p.add_argument('--size', nargs=2, type=int, default=(64, 64),
                   metavar=('H', 'W'))
    p.add_argument('--repeats', type=int, default=30)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--out-dir', default='work_dirs/benchmark_onnx')
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f'--repeats must be >= 1, got {args.repeats}')
    return args


class _Tensor:
    """``model(x, mode='tensor')`` as a plain module for the exporter."""

    def __new__(cls, model):
        import torch

        class Wrap(torch.nn.Module):

            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, x):
                out = self.model(x, mode='tensor')
                return out if isinstance(out, torch.Tensor) else out[0]

        return Wrap().eval()


def main(argv=None) -> dict:
    args = parse_args(argv)
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    import pad_mm  # noqa: F401
    from pad_mm.evaluation import PADRecorder
    from pad_mm.models import pad_layers, set_eval_mode
    from pad_mm.apis.inference import load_model, prepare_image
    pad, pad_cfg = load_model(args.pad_config, args.pad_checkpoint)
    van, _ = load_model(args.vanilla_config, args.vanilla_checkpoint)
    layers = list(pad_layers(pad))
    if not layers:
        raise ValueError(f'{args.pad_config}: the model has no PAD layer')
    set_eval_mode(pad, 'hard')
    if args.images:
        x = prepare_image(pad, pad_cfg, args.images[0]).inputs
    else:
        x = torch.randn(1, 3, *args.size,
                        generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), PADRecorder(pad, keep_maps=True) as rec:
        ref_pad = _Tensor(pad)(x)
    differing = {}
    for n, (_, probs) in rec.maps().items():
        idx = probs.argmax(1)
        counts = torch.bincount(idx.flatten(), minlength=probs.shape[1])
        differing[n] = 1 - counts.max().item() / idx.numel()
    with torch.no_grad():
        ref_van = _Tensor(van)(x)
    os.makedirs(args.out_dir, exist_ok=True)
    paths = {}

    def export(name, model):
        path = osp.join(args.out_dir, f'{name}.onnx')
        torch.onnx.export(_Tensor(model), (x, ), path, dynamo=False,
                          opset_version=17, input_names=['input'],
                          output_names=['output'])
        paths[name] = path

    export('vanilla', van)
    export('pad_sparse', pad)
    for _, m in layers:
        m.impl = 'reference'
    export('pad_reference', pad)
    for _, m in layers:
        m.impl = 'auto'
    opts = ort.SessionOptions()
    # idle worker threads sleep instead of spinning: a session's spinning
    # pool would otherwise take the CPU from the next session in the round
    session_config = {'session.intra_op.allow_spinning': '0'}
    for key, value in session_config.items():
        opts.add_session_config_entry(key, value)
    sessions = {k: ort.InferenceSession(p, opts,
                                        providers=['CPUExecutionProvider'])
                for k, p in paths.items()}
    feed = {'input': x.numpy()}
    outs = {k: s.run(None, feed)[0] for k, s in sessions.items()}
    err = {k: float(np.abs(outs[k] - (ref_van if k == 'vanilla' else
                                      ref_pad).numpy()).max())
           for k in outs}
    nodes = {}
    for k, p in paths.items():
        ops = [nd.op_type for nd in onnx.load(p).graph.node]
        nodes[k] = {op: ops.count(op) for op in ('Conv', 'NonZero', 'If')}
    for s in sessions.values():
        for _ in range(args.warmup):
            s.run(None, feed)
    # calls per round: at least ~0.1 s of each session, so a few-ms graph
    # round averages over calls, not one call of a noisy machine
    number = {}
    for k, s in sessions.items():
        t0 = time.perf_counter()
        s.run(None, feed)
        once = time.perf_counter() - t0
        number[k] = max(1, min(100, int(0.1 / max(once, 1e-6))))
    # the vanilla session timed twice per round: an A/A control whose
    # ratio (ideally 1) shows the harness's own bias next to the others;
    # every other round in reverse order (no session always follows the
    # same one)
    timed = {**sessions, 'vanilla_again': sessions['vanilla']}
    number['vanilla_again'] = number['vanilla']
    samples = {k: [] for k in timed}
    for r in range(args.repeats):
        for k in (list(timed) if r % 2 == 0 else list(timed)[::-1]):
            s = timed[k]
            t0 = time.perf_counter()
            for _ in range(number[k]):
                s.run(None, feed)
            samples[k].append((time.perf_counter() - t0) * 1e3 / number[k])
    ms = {k: statistics.median(v) for k, v in samples.items()}
    # paired by round: the median of the per-round ratios
    ratio = {k: statistics.median(a / b for a, b in
                                  zip(v, samples['vanilla']))
             for k, v in samples.items()}
    result = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        command='python tools/deployment/benchmark_onnx.py ' + ' '.join(
            sys.argv[1:] if argv is None else argv),
        onnxruntime=ort.__version__, torch=torch.__version__,
        loadavg=list(os.getloadavg()), input=list(x.shape),
        differing_share=differing, ms=ms, ratio=ratio,
        time_ratios='paired by round: median of the per-round ratios',
        rounds_ms=samples, calls_per_round=number,
        session_config=session_config,
        max_abs_diff_vs_pytorch=err, nodes=nodes, repeats=args.repeats)
    lines = ['| graph | Conv nodes | NonZero | median ms | / vanilla | '
             'max abs diff vs PyTorch |', '|---|---|---|---|---|---|']
    for k in ('vanilla', 'pad_sparse', 'pad_reference'):
        lines.append(f"| {k} | {nodes[k]['Conv']} | {nodes[k]['NonZero']} "
                     f"| {ms[k]:.2f} | {result['ratio'][k]:.3f}x | "
                     f"{err[k]:.2g} |")
    lines.append(f"| vanilla again (A/A) | | | {ms['vanilla_again']:.2f} | "
                 f"{result['ratio']['vanilla_again']:.3f}x | |")
    md = '\n'.join(lines)
    print(md)
    print('differing share per PAD layer (example input):',
          {k: round(v, 4) for k, v in differing.items()})
    result['table'] = md
    with open(osp.join(args.out_dir, 'benchmark_onnx.json'), 'w') as f:
        json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
