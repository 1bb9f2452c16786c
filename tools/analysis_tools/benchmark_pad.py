"""Benchmark the PAD convolution against a plain conv of the same shape.

Times, in one process and interleaved (round robin over the candidates, so
load changes on a shared machine hit all of them alike):

* ``fwd``: inference forward (soft probabilities, no grad);
* ``fwd+bwd``: training step of the layer (grads of input, weight, bias
  and probabilities; the plain conv has no probabilities);
* ``hard``: hard inference (one dilation per pixel, drawn at random per
  pixel: the worst case for the sparse path);

for the plain conv (``F.conv2d``), the reference PAD (one conv per
dilation) and the fused PAD (``impl='auto'``, i.e. the dispatcher's choice
for the device, which is printed). Ratios are against the plain conv.
Memory: the bytes the layer saves for backward (all devices) and, on CUDA,
the peak allocated during forward+backward.

Timing: CUDA events on a GPU, ``torch.utils.benchmark.Timer`` on the CPU;
warm-up runs are excluded; each number is the median of ``--repeats``
measurements.

Examples::

    # CPU, a few minutes (batch 1):
    python tools/analysis_tools/benchmark_pad.py --quick
    # GPU, the issue's setting (bf16, channels_last, full batch):
    python tools/analysis_tools/benchmark_pad.py --device cuda \
        --dtype bf16 --channels-last
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))
from pad_mm.ops import (available_impls, pad_conv2d,  # noqa: E402
                        pad_conv2d_hard, select_impl)

# name: (N, C_in, C_out, H, W, stride, groups, absolute dilations, what)
SHAPES: dict[str, tuple] = {
    'r101_layer4_os8': (8, 512, 512, 64, 128, 1, 1, (4, 8, 16),
                        'ResNet-101 layer4 conv2, output stride 8, '
                        '512x1024 crop'),
    'r101_layer4_os16': (8, 512, 512, 32, 64, 1, 1, (2, 4, 8),
                         'ResNet-101 layer4 conv2, output stride 16, '
                         '512x1024 crop'),
    'r50_layer2': (32, 128, 128, 28, 28, 1, 1, (1, 2, 4),
                   'ResNet-50 layer2 conv2, 224x224 input'),
    'mbv2_dw': (32, 192, 192, 28, 28, 1, 192, (1, 2, 4),
                'MobileNetV2 depthwise 3x3 (block 3, 192 ch), 224x224 '
                'input'),
}
# a few-millisecond shape for smoke tests (not run by default)
EXTRA_SHAPES = {
    'tiny': (1, 16, 16, 12, 12, 1, 1, (1, 2, 4), 'smoke test'),
}
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16,
          'fp16': torch.float16}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default=None,
                   help="'cpu' or 'cuda' (default: cuda if available)")
    p.add_argument('--dtype', choices=list(DTYPES), default=None,
                   help='default: bf16 on cuda, fp32 on cpu')
    p.add_argument('--channels-last', action='store_true',
                   help='channels_last input and weight')
    p.add_argument('--shapes', nargs='+',
                   choices=list(SHAPES) + list(EXTRA_SHAPES),
                   default=list(SHAPES), help='shapes to run')
    p.add_argument('--batch', type=int, default=None,
                   help='override the batch size of every shape')
    p.add_argument('--quick', action='store_true',
                   help='batch 1, 3 repeats, 1 warm-up (CPU-sized run)')
    p.add_argument('--repeats', type=int, default=None,
                   help='timed repeats per candidate (default 10, --quick 3)')
    p.add_argument('--warmup', type=int, default=None,
                   help='untimed warm-up runs (default 2, --quick 1)')
    p.add_argument('--out', default='work_dirs/benchmark_pad.json',
                   help='JSON output path')
    args = p.parse_args(argv)
    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.device == 'cuda' and not torch.cuda.is_available():
        p.error('--device cuda: CUDA is not available')
    if args.device not in ('cpu', 'cuda'):
        p.error(f"--device must be 'cpu' or 'cuda', got {args.device!r}")
    if args.dtype is None:
        args.dtype = 'bf16' if args.device == 'cuda' else 'fp32'
    if args.repeats is None:
        args.repeats = 3 if args.quick else 10
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.batch is None and args.quick:
        args.batch = 1
    if args.batch is not None and args.batch < 1:
        p.error(f'--batch must be >= 1, got {args.batch}')
    if args.repeats < 1:
        p.error(f'--repeats must be >= 1, got {args.repeats}')
    return args


def device_name(device: str) -> str:
    if device == 'cuda':
        return torch.cuda.get_device_name()
    name = platform.processor() or platform.machine()
    try:
        out = subprocess.run(['lscpu'], capture_output=True, text=True,
                             check=True).stdout
        for line in out.splitlines():
            if line.startswith('Model name:'):
                name = line.split(':', 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return f'{name}, {os.cpu_count()} logical cores, ' \
        f'{torch.get_num_threads()} torch threads'


def _sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def time_interleaved(fns: dict[str, Callable[[], object]], device: str,
                     repeats: int, warmup: int) -> dict[str, float]:
    """Median milliseconds of each function, measured round robin."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    samples: dict[str, list[float]] = {k: [] for k in fns}
    timers, number = {}, {}
    if device == 'cpu':
        from torch.utils import benchmark
        for k, fn in fns.items():
            timers[k] = benchmark.Timer(stmt='fn()', globals={'fn': fn})
            # calls per sample: at least ~50 ms per sample
            once = timers[k].timeit(1).median
            number[k] = max(1, min(100, int(0.05 / max(once, 1e-6))))
    for _ in range(repeats):
        for k, fn in fns.items():
            if device == 'cuda':
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize()
                samples[k].append(start.elapsed_time(end))
            else:
                samples[k].append(timers[k].timeit(number[k]).median * 1e3)
    return {k: statistics.median(v) for k, v in samples.items()}


def saved_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct storages autograd saves for backward."""
    seen: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(seen.values())


def peak_bytes(fn: Callable[[], object], device: str) -> int | None:
    """Peak CUDA memory allocated by ``fn`` above what was allocated before
    (None on the CPU)."""
    if device != 'cuda':
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def bench_shape(name: str, args: argparse.Namespace) -> dict:
    n, c_in, c_out, h, w, stride, groups, dil, what = {
        **SHAPES, **EXTRA_SHAPES}[name]
    if args.batch is not None:
        n = args.batch
    dev, dtype = args.device, DTYPES[args.dtype]
    fmt = torch.channels_last if args.channels_last else \
        torch.contiguous_format
    g = torch.Generator(device='cpu').manual_seed(0)
    k = 3
    x = torch.randn(n, c_in, h, w, generator=g).to(dev, dtype).to(
        memory_format=fmt).requires_grad_()
    weight = (torch.randn(c_out, c_in // groups, k, k, generator=g) /
              (c_in // groups * k * k)**0.5).to(dev, dtype).to(
                  memory_format=fmt).requires_grad_()
    bias = torch.zeros(c_out, device=dev, dtype=dtype, requires_grad=True)
    h_out, w_out = (h - 1) // stride + 1, (w - 1) // stride + 1
    logits = torch.randn(n, len(dil), h_out, w_out, generator=g).to(dev)
    probs = torch.softmax(logits, 1).to(dtype).requires_grad_()
    index = logits.argmax(1)  # random per pixel
    base_d = dil[0]
    impl = select_impl(x, weight, probs, dil, stride, groups)
    hard_impl = select_impl(x, weight, index, dil, stride, groups, hard=True)

    def conv():
        return F.conv2d(x, weight, bias, stride, base_d * (k - 1) // 2,
                        base_d, groups)

    def soft(name):
        return lambda: pad_conv2d(x, weight, bias, probs, dil, stride,
                                  groups, impl=name)

    def hard(name):
        return lambda: pad_conv2d_hard(x, weight, bias, index, dil, stride,
                                       groups, impl=name)

    def no_grad(fn):
        def run():
            with torch.no_grad():
                fn()
        return run

    def train(fn):
        params = [x, weight, bias, probs]

        def run():
            out = fn()
            return torch.autograd.grad(out, params, torch.ones_like(out),
                                       allow_unused=True)
        return run

    # every implementation that supports these inputs (auto's choice among
    # them is reported)
    names = [m for m in available_impls()[1:]
             if _supported(m, x, weight, probs, dil, stride, groups)]
    names.sort(key=lambda m: m != 'reference')
    rep, wu = args.repeats, args.warmup
    res = {'shape': name, 'what': what,
           'N': n, 'C_in': c_in, 'C_out': c_out, 'H': h, 'W': w,
           'stride': stride, 'groups': groups, 'dilations': list(dil),
           'impls': names, 'auto': impl, 'hard_auto': hard_impl}
    print(f'[{name}] N={n} C={c_in}->{c_out} {h}x{w} s={stride} '
          f'g={groups} dil={dil}: candidates {names}, auto -> {impl!r}, '
          f'hard auto -> {hard_impl!r}', flush=True)
    res['fwd_ms'] = time_interleaved(
        {'conv': no_grad(conv), **{m: no_grad(soft(m)) for m in names}}, dev,
        rep, wu)
    res['hard_ms'] = time_interleaved(
        {'conv': no_grad(conv), **{m: no_grad(hard(m)) for m in names}}, dev,
        rep, wu)
    res['fwd_bwd_ms'] = time_interleaved(
        {'conv': train(conv), **{m: train(soft(m)) for m in names}}, dev,
        rep, wu)
    res['saved_mib'] = {'conv': saved_bytes(conv) / 2**20}
    res['saved_mib'].update(
        {m: saved_bytes(soft(m)) / 2**20 for m in names})
    if dev == 'cuda':
        res['peak_mib'] = {'conv': peak_bytes(train(conv), dev) / 2**20}
        res['peak_mib'].update(
            {m: peak_bytes(train(soft(m)), dev) / 2**20 for m in names})
    for key in ('fwd_ms', 'hard_ms', 'fwd_bwd_ms', 'saved_mib', 'peak_mib'):
        if key not in res:
            continue
        base = res[key]['conv']
        res[key + '_ratio'] = {m: (v / base if base else None)
                               for m, v in res[key].items()}
    return res


def _supported(name, *args) -> bool:
    try:
        select_impl(*args, impl=name)
        return True
    except ValueError:
        return False


def table(results: list[dict], device: str) -> str:
    """Markdown table: milliseconds / MiB and (ratio to the plain conv)."""
    names: list[str] = []
    for r in results:
        names += [m for m in r['impls'] if m not in names]
    head = ['shape', 'N', 'mode', 'plain conv'] + \
        [f'PAD {m}' for m in names] + ['auto picks']
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    rows = [('forward (soft)', 'fwd_ms', 'ms', 'auto'),
            ('forward+backward', 'fwd_bwd_ms', 'ms', 'auto'),
            ('hard inference', 'hard_ms', 'ms', 'hard_auto'),
            ('saved for backward', 'saved_mib', 'MiB', 'auto')]
    if device == 'cuda':
        rows.append(('peak mem fwd+bwd', 'peak_mib', 'MiB', 'auto'))
    for r in results:
        for label, key, unit, auto in rows:
            v, q = r[key], r[key + '_ratio']
            cells = [r['shape'], str(r['N']), label,
                     f"{v['conv']:.1f} {unit}"]
            for m in names:
                cells.append(f'{v[m]:.1f} {unit} ({q[m]:.2f}x)'
                             if m in v else 'n/a')
            cells.append(r[auto])
            lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    info = {
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        'device': device_name(args.device),
        'device_type': args.device,
        'torch': torch.__version__,
        'dtype': args.dtype,
        'channels_last': args.channels_last,
        'repeats': args.repeats,
        # other processes on the machine distort CPU timings: recorded
        'loadavg_start': list(os.getloadavg()),
        'command': 'python tools/analysis_tools/benchmark_pad.py ' +
        ' '.join(sys.argv[1:] if argv is None else argv),
    }
    print(json.dumps(info, indent=1), flush=True)
    results = [bench_shape(s, args) for s in args.shapes]
    md = table(results, args.device)
    print(md)
    info['results'] = results
    info['loadavg_end'] = list(os.getloadavg())
    info['table'] = md
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)),
                    exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(info, f, indent=1)
        print(f'wrote {args.out}')
    return info


if __name__ == '__main__':
    main()
