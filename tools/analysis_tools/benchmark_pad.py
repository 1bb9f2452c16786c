"""Benchmark the PAD convolution against a plain conv of the same shape.

Times, in one process and interleaved (round robin over the candidates, so
load changes on a shared machine hit all of them alike):

* ``fwd``: inference forward (soft probabilities, no grad);
* ``fwd+bwd``: training step of the layer (grads of input, weight, bias
  and probabilities; the plain conv has no probabilities);
* ``hard``: hard inference (one dilation per pixel, from
  ``--index-source``: ``random`` per pixel (the worst case for the sparse
  path), ``blobs:FRAC`` (one dominant dilation, FRAC of the pixels in a
  few blobs on the other dilations: what trained models produce) or
  ``checkpoint:CONFIG:CKPT`` (the real maps and input features of every
  PAD layer of a trained model, recorded with the probe hooks of
  ``pad_mm.evaluation.PADRecorder`` on ``--num-images`` validation images
  or ``--images``); only the hard row is timed for the last two);

for the plain conv (``F.conv2d``), the reference PAD (one conv per
dilation) and the fused PAD (``impl='auto'``, i.e. the dispatcher's choice
for the device, which is printed). Ratios are against the plain conv,
paired by round (the median of the per-round ratios).
Memory: the bytes the layer saves for backward (all devices) and, on CUDA,
the peak allocated during forward+backward.

Timing: CUDA events on a GPU, ``torch.utils.benchmark.Timer`` on the CPU;
warm-up runs are excluded; each number is the median of ``--repeats``
measurements.

Examples::

    # CPU, a few minutes (batch 1):
    python tools/analysis_tools/benchmark_pad.py --quick
    # hard inference at a trained-model-like map (10% of pixels in blobs):
    python tools/analysis_tools/benchmark_pad.py --quick \
        --index-source blobs:0.1
    # at the real maps of a checkpoint:
    python tools/analysis_tools/benchmark_pad.py --quick \
        --index-source checkpoint:CONFIG:CKPT
    # the sparse/full choice of the CPU hard path:
    python tools/analysis_tools/benchmark_pad.py --quick --sweep-share
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
from pad_mm.ops import (available_impls, conv_out_size,  # noqa: E402
                        native, pad_conv2d, pad_conv2d_hard, pad_padding,
                        select_impl, sync)

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
# not run by default: a few-millisecond shape for smoke tests, and the
# small maps the sparse/full choice of the CPU hard path was measured at
EXTRA_SHAPES = {
    'tiny': (1, 16, 16, 12, 12, 1, 1, (1, 2, 4), 'smoke test'),
    'demo_layer4': (1, 512, 512, 8, 8, 1, 1, (1, 2, 4),
                    'the demo\'s ResNet-18 layer4 conv2, 64x64 input'),
    'r18_layer3_32': (1, 256, 256, 32, 32, 1, 1, (1, 2, 4),
                      'ResNet-18 layer3 conv2, 512x512 input'),
    'r101_os16_c256': (2, 256, 256, 32, 64, 1, 1, (2, 4, 8),
                       'ResNet-101 layer4 OS16 map with 256 channels, '
                       'batch 2 (the deployment issue\'s measurement)'),
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
    p.add_argument('--index-source', default='random',
                   help="hard-inference index: 'random', 'blobs:FRAC' "
                   "(0 <= FRAC < 1) or 'checkpoint:CONFIG:CKPT'")
    p.add_argument('--images', nargs='+', default=None,
                   help='checkpoint source: images to record maps on '
                   '(default: the first --num-images of the val set)')
    p.add_argument('--num-images', type=int, default=4,
                   help='checkpoint source: validation images (default 4)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch.set_num_threads (default: torch\'s choice); '
                   'on a CPU shared with other jobs 1 thread is less '
                   'disturbed by descheduled OpenMP workers')
    p.add_argument('--hard-only', action='store_true',
                   help='time hard inference only (the soft and training '
                   'rows do not depend on the index source)')
    p.add_argument('--sweep-share', action='store_true',
                   help='time the CPU hard path (im2col) strategies, sparse '
                   'vs full, at blob maps with 0-60%% differing pixels')
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
    if args.threads is not None:
        if args.threads < 1:
            p.error(f'--threads must be >= 1, got {args.threads}')
        torch.set_num_threads(args.threads)
    try:
        args.index = parse_index_source(args.index_source)
    except ValueError as e:
        p.error(str(e))
    return args


def parse_index_source(text: str) -> tuple:
    """``('random',)``, ``('blobs', frac)`` or ``('checkpoint', config,
    ckpt)`` from the ``--index-source`` string."""
    if text == 'random':
        return ('random', )
    if text.startswith('blobs:'):
        try:
            frac = float(text[len('blobs:'):])
        except ValueError:
            frac = -1.0
        if not 0.0 <= frac < 1.0:
            raise ValueError(f'--index-source blobs:FRAC needs 0 <= FRAC < 1'
                             f', got {text!r}')
        return ('blobs', frac)
    if text.startswith('checkpoint:'):
        parts = text[len('checkpoint:'):].split(':')
        if len(parts) != 2 or not all(parts):
            raise ValueError('--index-source checkpoint:CONFIG:CKPT needs a '
                             f'config and a checkpoint path, got {text!r}')
        for what, path in zip(('config', 'checkpoint'), parts):
            if not os.path.isfile(path):
                raise ValueError(f'--index-source: {what} {path!r} does not '
                                 'exist')
        return ('checkpoint', parts[0], parts[1])
    raise ValueError("--index-source must be 'random', 'blobs:FRAC' or "
                     f"'checkpoint:CONFIG:CKPT', got {text!r}")


def blob_index(n: int, h: int, w: int, num_d: int, frac: float,
               generator: torch.Generator, dominant: int = 0) -> torch.Tensor:
    """[N, H, W] index map: ``dominant`` everywhere except two discs per
    image (at random centres, on the other options in turn) that together
    cover ``frac`` of the pixels (to within one pixel per image)."""
    index = torch.full((n, h, w), dominant, dtype=torch.long)
    if frac == 0 or num_d == 1:
        return index
    others = [i for i in range(num_d) if i != dominant]
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    target = round(frac * h * w)
    for b in range(n):
        centres = torch.rand(2, 2, generator=generator) * torch.tensor(
            [h, w])
        r = 0.0
        while True:  # grow both discs until they cover the target share
            masks = [((yy - cy)**2 + (xx - cx)**2) <= r * r
                     for cy, cx in centres.tolist()]
            if int((masks[0] | masks[1]).sum()) >= target or r > h + w:
                break
            r += 0.25
        for j, m in enumerate(masks):
            index[b][m] = others[j % len(others)]
    return index


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



def packed_conv(x: torch.Tensor, weight: torch.Tensor,
                bias: torch.Tensor | None, stride: int, pad: int, d: int,
                groups: int) -> Callable[[], torch.Tensor] | None:
    """A plain conv on a weight packed once into oneDNN's layout (what the
    CPU hard path's GEMM gets from its cache, and ``F.conv2d`` redoes per
    call): the fair baseline on small maps. Its output stays in oneDNN's
    channels-last layout (no conversion timed). None where it does not
    apply (not a float32 CPU conv without groups, or no oneDNN)."""
    if x.device.type != 'cpu' or x.dtype != torch.float32 or groups != 1 \
            or not torch.backends.mkldnn.is_available():
        return None
    conv = torch.ops.mkldnn._convolution_pointwise
    p, s, dl = [pad, pad], [stride, stride], [d, d]
    with torch.no_grad():
        wp = torch._C._nn.mkldnn_reorder_conv2d_weight(
            weight.detach().to_mkldnn(), p, s, dl, groups)
        b = None if bias is None else bias.detach()
        ref = F.conv2d(x, weight, bias, stride, pad, d, groups)
        if not torch.allclose(conv(x, wp, b, p, s, dl, groups, 'none', [],
                                   ''), ref, rtol=1e-3, atol=1e-3):
            return None
    return lambda: conv(x, wp, b, p, s, dl, groups, 'none', [], '')


def differing_gemm(x: torch.Tensor, weight: torch.Tensor,
                   bias: torch.Tensor | None, index: torch.Tensor,
                   dominant: int) -> Callable[[], torch.Tensor] | None:
    """The sparse strategy's GEMM alone: the M pixels of ``index`` off
    ``dominant`` times the weight, one oneDNN linear on a packed weight
    (what ``pad_mm.ops.impls.hard_im2col`` runs), their taps already gathered
    ([M, k*k*C_in], seeded random values). The plain conv plus this is the
    floor of "conv at the dominant dilation + the differing pixels
    recomputed": gathers, transposes and write-back come on top. None
    where it does not apply (not a float32 CPU conv without groups, no
    checked oneDNN linear, no differing pixel)."""
    from pad_mm.ops.impls.hard_im2col import packed_gemm_ok, packed_weight
    if x.device.type != 'cpu' or x.dtype != torch.float32 or \
            weight.shape[1] != x.shape[1] or not packed_gemm_ok():
        return None
    m = int((index != dominant).sum())
    if m == 0:
        return None
    a = torch.randn(m, weight[0].numel(),
                    generator=torch.Generator().manual_seed(0))
    linear = torch.ops.mkldnn._linear_pointwise
    with torch.no_grad():
        wp = packed_weight(weight.detach())
    b = None if bias is None else bias.detach()
    return lambda: linear(a, wp, b, 'none', [], '')


def time_interleaved(fns: dict[str, Callable[[], object]], device: str,
                     repeats: int, warmup: int,
                     out: dict[str, list[float]] | None = None,
                     control: str | None = None) -> dict[str, float]:
    """Median milliseconds of each function, measured round robin
    (``repeats`` rounds, every other one in reverse order, so that no
    function always runs right after the same other one); ``out``, if
    given, receives every round's milliseconds per function (for
    :func:`paired_ratio`). ``control``: a key of ``fns`` also timed a
    second time per round, as ``control + '_again'``: an A/A comparison
    whose paired ratio (ideally 1) shows the harness's own bias and
    noise next to the others' ratios."""
    if control is not None:
        fns = {**fns, control + '_again': fns[control]}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    samples: dict[str, list[float]] = {k: [] for k in fns}
    timers, number = {}, {}
    if device == 'cpu':
        from torch.utils import benchmark
        for k, fn in fns.items():
            # Timer runs single-threaded unless told (``--threads``)
            timers[k] = benchmark.Timer(stmt='fn()', globals={'fn': fn},
                                        num_threads=torch.get_num_threads())
            # calls per sample: at least ~50 ms per sample
            once = timers[k].timeit(1).median
            number[k] = max(1, min(100, int(0.05 / max(once, 1e-6))))
    for r in range(repeats):
        for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            fn = fns[k]
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
    if out is not None:
        out.update(samples)
    return {k: statistics.median(v) for k, v in samples.items()}


def paired_ratio(samples: dict[str, list[float]],
                 base: str = 'conv') -> dict[str, float]:
    """Each function's time over ``base``'s, paired by round: the median
    over rounds of the ratio within the round (a slow spell of a shared
    machine then hits both sides of a ratio, not one)."""
    return {k: statistics.median(a / b for a, b in zip(v, samples[base]))
            for k, v in samples.items()}


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
    h_out, w_out = conv_out_size(h, k, stride), conv_out_size(w, k, stride)
    logits = torch.randn(n, len(dil), h_out, w_out, generator=g).to(dev)
    probs = torch.softmax(logits, 1).to(dtype).requires_grad_()
    if args.index[0] == 'blobs':
        index = blob_index(n, h_out, w_out, len(dil), args.index[1], g)
    else:
        index = logits.argmax(1)  # random per pixel
    index = index.to(dev)
    base_d = dil[0]  # the dominant one of blob maps
    impl = select_impl(x, weight, probs, dil, stride, groups)
    hard_impl = select_impl(x, weight, index, dil, stride, groups, hard=True)

    def conv():
        return F.conv2d(x, weight, bias, stride, pad_padding(k, base_d),
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
    res['index_source'] = args.index_source
    res['differing_share'] = float((index != 0).float().mean())
    # 'auto' too: it skips the implementations when every pixel names the
    # same dilation (one plain conv), which a forced implementation does not
    packed = packed_conv(x.detach(), weight, bias, stride,
                         pad_padding(k, base_d), base_d, groups)
    def timed(key: str, fns: dict[str, Callable[[], object]]) -> None:
        rounds: dict[str, list[float]] = {}
        res[key] = time_interleaved(fns, dev, rep, wu, rounds, 'conv')
        res[key + '_ratio'] = paired_ratio(rounds)  # paired by round

    gemm = differing_gemm(x.detach(), weight, bias, index,
                          int(torch.bincount(index.flatten()).argmax()))

    def torch_ops(fn):  # the CPU hard path without its compiled helpers
        def run():
            with native.disabled():
                fn()
        return run

    timed('hard_ms',
          {'conv': no_grad(conv), **{m: no_grad(hard(m)) for m in names},
           'auto': no_grad(hard('auto')),
           **({'auto_torch_ops': no_grad(torch_ops(hard('auto')))}
              if dev == 'cpu' and native.available() else {}),
           **({'conv_packed': no_grad(packed)} if packed else {}),
           **({'gemm_differing': no_grad(gemm)} if gemm else {})})
    if args.index[0] != 'random' or args.hard_only:
        return res  # soft paths do not depend on the index
    timed('fwd_ms', {'conv': no_grad(conv),
                     **{m: no_grad(soft(m)) for m in names}})
    timed('fwd_bwd_ms', {'conv': train(conv),
                         **{m: train(soft(m)) for m in names}})
    res['saved_mib'] = {'conv': saved_bytes(conv) / 2**20}
    res['saved_mib'].update(
        {m: saved_bytes(soft(m)) / 2**20 for m in names})
    if dev == 'cuda':
        res['peak_mib'] = {'conv': peak_bytes(train(conv), dev) / 2**20}
        res['peak_mib'].update(
            {m: peak_bytes(train(soft(m)), dev) / 2**20 for m in names})
    for key in ('saved_mib', 'peak_mib'):
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
        [f'PAD {m}' for m in names] + ['PAD auto', 'auto picks',
                                       'plain conv, packed weight',
                                       'GEMM of the differing pixels',
                                       'plain conv again (A/A)',
                                       'PAD auto, torch-op gather']
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
            if key not in r:
                continue
            v, q = r[key], r[key + '_ratio']
            cells = [r['shape'], str(r['N']), label,
                     f"{v['conv']:.1f} {unit}"]
            for m in names + ['auto']:
                cells.append(f'{v[m]:.1f} {unit} ({q[m]:.2f}x)'
                             if m in v else '-')
            cells.append(r[auto])
            for extra in ('conv_packed', 'gemm_differing', 'conv_again',
                          'auto_torch_ops'):
                cells.append(f'{v[extra]:.1f} {unit} ({q[extra]:.2f}x)'
                             if extra in v else '-')
            lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


SWEEP_SHARES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def sweep_share(name: str, args: argparse.Namespace) -> dict:
    """Plain conv vs the CPU hard path's two strategies (sparse: conv at
    the dominant dilation + the differing pixels recomputed; full: every
    pixel by gather + GEMM) at blob maps of growing differing share: where
    they cross sets ``SPARSE_MAX_SHARE`` and ``SPARSE_MIN_PIXELS``."""
    from pad_mm.ops import pad_conv2d_hard_im2col
    n, c_in, c_out, h, w, stride, groups, dil, what = {
        **SHAPES, **EXTRA_SHAPES}[name]
    if args.batch is not None:
        n = args.batch
    g = torch.Generator().manual_seed(0)
    dtype = DTYPES[args.dtype]
    x = torch.randn(n, c_in, h, w, generator=g).to(args.device, dtype)
    weight = (torch.randn(c_out, c_in // groups, 3, 3, generator=g) /
              (c_in // groups * 9)**0.5).to(args.device, dtype)
    bias = torch.zeros(c_out, device=args.device, dtype=dtype)
    h_out, w_out = conv_out_size(h, 3, stride), conv_out_size(w, 3, stride)
    rows = []
    print(f'[{name}] sweep of the differing share', flush=True)
    for share in SWEEP_SHARES:
        index = blob_index(n, h_out, w_out, len(dil), share, g).to(
            args.device)
        fns = {
            'conv': lambda: F.conv2d(x, weight, bias, stride, dil[0], dil[0],
                                     groups),
            'sparse': lambda: pad_conv2d_hard_im2col(
                x, weight, bias, index, dil, stride, groups,
                strategy='sparse'),
            'full': lambda: pad_conv2d_hard_im2col(
                x, weight, bias, index, dil, stride, groups,
                strategy='full'),
        }
        packed = packed_conv(x, weight, bias, stride, dil[0], dil[0],
                             groups)
        if packed:
            fns['conv_packed'] = packed
        gemm = differing_gemm(x, weight, bias, index, 0)
        if gemm:
            fns['gemm_differing'] = gemm
        rounds: dict[str, list[float]] = {}
        with torch.no_grad():
            ms = time_interleaved(fns, args.device, args.repeats,
                                  args.warmup, rounds, 'conv')
        row = dict(share=float((index != 0).float().mean()), ms=ms,
                   ratio=paired_ratio(rounds))
        print(f"  share {row['share']:.3f}: sparse "
              f"{row['ratio']['sparse']:.3f}x, full "
              f"{row['ratio']['full']:.3f}x", flush=True)
        rows.append(row)
    return dict(shape=name, what=what, N=n, rows=rows)


def sweep_table(results: list[dict]) -> str:
    lines = ['| shape | N | differing share | plain conv | sparse | full | '
             'plain conv, packed weight | GEMM of the differing pixels | '
             'plain conv again (A/A) |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in results:
        for row in r['rows']:
            ms, q = row['ms'], row['ratio']
            extra = [f'{ms[k]:.2f} ms ({q[k]:.2f}x)' if k in ms else '-'
                     for k in ('conv_packed', 'gemm_differing',
                               'conv_again')]
            lines.append(
                f"| {r['shape']} | {r['N']} | {row['share']:.3f} | "
                f"{ms['conv']:.2f} ms | {ms['sparse']:.2f} ms "
                f"({q['sparse']:.2f}x) | {ms['full']:.2f} ms "
                f"({q['full']:.2f}x) | {' | '.join(extra)} |")
    return '\n'.join(lines)


def record_checkpoint_maps(config: str, checkpoint: str,
                           images: list[str] | None,
                           num_images: int) -> list[dict]:
    """Per PAD layer and image: the layer's real input, its argmax index
    map (recorded with ``PADRecorder``'s probe hooks, ``eval_mode='hard'``)
    and its conv parameters."""
    from pad_mm.apis.inference import (load_model, prepare_image,
                                       prepare_sample)
    from pad_mm.evaluation import PADRecorder
    model, cfg = load_model(config, checkpoint)
    if images is None:
        from mmengine.registry import DATASETS
        loader = cfg.get('val_dataloader') or cfg.get('test_dataloader')
        dataset = DATASETS.build(loader['dataset'])
        samples = [prepare_sample(model, dataset[i])
                   for i in range(min(num_images, len(dataset)))]
    else:
        samples = [prepare_image(model, cfg, p) for p in images]
    rec = PADRecorder(model, keep_maps=True)
    layers = dict(rec.layers)
    inputs: dict[str, list] = {name: [] for name in layers}
    for layer in layers.values():
        layer.eval_mode = 'hard'
    handles = [layer.register_forward_pre_hook(
        lambda mod, args, name=name: inputs[name].append(args[0].detach()))
        for name, layer in layers.items()]
    with rec, torch.no_grad():
        for smp in samples:
            model(smp.inputs, mode='tensor')
    for hd in handles:
        hd.remove()
    out = []
    for name, layer in layers.items():
        for i, (x, probs) in enumerate(zip(inputs[name],
                                           rec.records[name].probs)):
            out.append(dict(layer=name, image=i, x=x,
                            index=probs.argmax(1),
                            weight=layer.weight.detach(),
                            bias=None if layer.bias is None else
                            layer.bias.detach(),
                            dilations=layer.abs_dilations,
                            stride=layer.stride[0], groups=layer.groups))
    return out


def bench_checkpoint(args: argparse.Namespace) -> list[dict]:
    """Hard inference of every PAD layer at its recorded maps and real
    inputs vs a plain conv (at the layer's dominant dilation)."""
    _, config, ckpt = args.index
    maps = record_checkpoint_maps(config, ckpt, args.images, args.num_images)
    results = []
    for m in maps:
        x, index, wt, b = m['x'], m['index'], m['weight'], m['bias']
        dil, s, g = m['dilations'], m['stride'], m['groups']
        k = wt.shape[-1]
        counts = torch.bincount(index.flatten(), minlength=len(dil))
        dom = int(counts.argmax())
        d = dil[dom]
        fns = {
            'conv': lambda: F.conv2d(x, wt, b, s, pad_padding(k, d), d, g),
            'auto': lambda: pad_conv2d_hard(x, wt, b, index, dil, s, g),
            'reference': lambda: pad_conv2d_hard(x, wt, b, index, dil, s, g,
                                                 impl='reference'),
        }
        packed = packed_conv(x, wt, b, s, pad_padding(k, d), d, g)
        if packed:
            fns['conv_packed'] = packed
        rounds: dict[str, list[float]] = {}
        with torch.no_grad():
            ms = time_interleaved(fns, 'cpu', args.repeats, args.warmup,
                                  rounds, 'conv')
        res = dict(layer=m['layer'], image=m['image'],
                   shape=list(x.shape), dilations=list(dil),
                   shares=(counts.double() / index.numel()).tolist(),
                   differing_share=1 - float(counts[dom]) / index.numel(),
                   hard_auto=select_impl(x, wt, index, dil, s, g, hard=True),
                   ms=ms, ratio=paired_ratio(rounds))
        print(f"  {res['layer']} image {res['image']}: differing "
              f"{res['differing_share']:.3f}, auto "
              f"{res['ratio']['auto']:.3f}x, reference "
              f"{res['ratio']['reference']:.3f}x", flush=True)
        results.append(res)
    return results


def _vs_packed(rs: list[dict]) -> str:
    if not all('conv_packed' in r['ms'] for r in rs):
        return '-'
    q = statistics.median(r['ms']['auto'] / r['ms']['conv_packed']
                          for r in rs)
    return f'{q:.3f}x'


def checkpoint_table(results: list[dict]) -> str:
    """Per PAD layer: medians over the recorded images."""
    lines = ['| PAD layer | input | images | differing share (median) | '
             'hard auto / plain conv (median) | reference / plain conv '
             '(median) | auto picks | hard auto / packed plain conv '
             '(median) | plain conv again / plain conv (A/A, median) |',
             '|---|---|---|---|---|---|---|---|---|']
    by_layer: dict[str, list[dict]] = {}
    for r in results:
        by_layer.setdefault(r['layer'], []).append(r)
    allr = []
    for name, rs in by_layer.items():
        allr += rs
        lines.append(
            f"| {name} | {'x'.join(map(str, rs[0]['shape']))} | {len(rs)} | "
            f"{statistics.median(r['differing_share'] for r in rs):.3f} | "
            f"{statistics.median(r['ratio']['auto'] for r in rs):.3f}x | "
            f"{statistics.median(r['ratio']['reference'] for r in rs):.3f}x"
            f" | {rs[0]['hard_auto']} | {_vs_packed(rs)} | "
            f"{statistics.median(r['ratio']['conv_again'] for r in rs):.3f}x"
            " |")
    if allr:
        tot = {k: sum(r['ms'][k] for r in allr) for k in allr[0]['ms']}
        lines.append(
            f"| all layers (sum of times) | | | "
            f"{statistics.median(r['differing_share'] for r in allr):.3f} | "
            f"{tot['auto'] / tot['conv']:.3f}x | "
            f"{tot['reference'] / tot['conv']:.3f}x | | "
            + (f"{tot['auto'] / tot['conv_packed']:.3f}x |"
               if 'conv_packed' in tot else '- |')
            + f" {tot['conv_again'] / tot['conv']:.3f}x |")
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
        'time_ratios': 'paired by round: median of the per-round ratios',
        # whether the CPU hard path's sparse strategy runs its compiled
        # gather / write-back or their torch-op version
        'compiled_helpers': native.status(),
        # other processes on the machine distort CPU timings: recorded
        'loadavg_start': list(os.getloadavg()),
        'command': 'python tools/analysis_tools/benchmark_pad.py ' +
        ' '.join(sys.argv[1:] if argv is None else argv),
    }
    print(json.dumps(info, indent=1), flush=True)
    if args.sweep_share:
        results = [sweep_share(s, args) for s in args.shapes]
        md = sweep_table(results)
    elif args.index[0] == 'checkpoint':
        results = bench_checkpoint(args)
        md = checkpoint_table(results)
    else:
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
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
