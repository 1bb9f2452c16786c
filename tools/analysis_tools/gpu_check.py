"""GPU check of the PAD kernels: correctness, speed, memory, a model step.

Needs torch and triton only (plus ``pad_mm.ops``, which is torch-only): it
runs on a GPU machine without OpenMMLab. Every case is appended to the JSON
file (``--out``) as soon as it is done, so a run stopped by a time limit
keeps what it measured. Ends within ``--time-limit`` seconds (default 450,
compile time included): cases that would start later are recorded as
skipped.

Sections:

1. ``self_check``: the dispatcher's self-check of the Triton kernels
   (soft and hard, fp32/fp16/bf16), as ``impl='auto'`` runs it.
2. ``correctness``: every kernel variant against the float64 reference on
   the same rounded inputs; forward and each gradient separately; hard,
   soft and straight-through; NCHW and channels_last; stride 2; groups > 1;
   depthwise; autocast with fp32 weights. fp32 runs with TF32 off at a tight
   tolerance; fp16/bf16 at a tolerance relative to cuDNN's own error in
   the same dtype (the reference's convs in that dtype vs float64). Each
   variant is run twice: ``deterministic`` says whether both runs are
   bitwise equal.
3. ``speed``: against a cuDNN conv of the same shape (``cudnn.benchmark``
   on, bf16, channels_last, CUDA events, median of ``--repeats`` (>= 20)
   after warm-up): forward (soft inference), forward+backward, hard
   inference, and peak memory of forward+backward, for ResNet-101 layer4
   (output stride 8 and 16, batch 2 and 8), ResNet-50 layer2 (batch 32)
   and a MobileNetV2 depthwise conv.
4. ``model``: the training-step time of a plain-torch DeepLabV3+ ResNet-101
   (batch 2, 512x1024, bf16 autocast) with PAD convs (the 3x3 convs of
   layer4) over the same model with plain convs.

Usage::

    python tools/analysis_tools/gpu_check.py --out gpu_check.json
    # CI, no GPU: a tiny case in Triton's interpreter on the CPU
    python tools/analysis_tools/gpu_check.py --smoke --out smoke.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable

# --smoke must set the interpreter before triton is imported
if '--smoke' in sys.argv[1:]:
    os.environ['TRITON_INTERPRET'] = '1'

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# run from the repo root as documented, with no PYTHONPATH
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', '..'))
from pad_mm.ops import (HAS_TRITON, conv_out_size,  # noqa: E402
                        dispatch, gumbel_softmax, pad_conv2d,
                        pad_conv2d_hard, pad_conv2d_reference, tf32_enabled,
                        triton_pad)
from pad_mm.ops.calls import time_run  # noqa: E402

DIL = (1, 2, 4)
GRADS = ('out', 'grad_input', 'grad_weight', 'grad_bias', 'grad_probs')

# name: (N, C_in, C_out, groups, H, W, stride)
SPEED_SHAPES = {
    'r101_layer4_os8_b2': (2, 512, 512, 1, 64, 128, 1),
    'r101_layer4_os8_b8': (8, 512, 512, 1, 64, 128, 1),
    'r101_layer4_os16_b2': (2, 512, 512, 1, 32, 64, 1),
    'r101_layer4_os16_b8': (8, 512, 512, 1, 32, 64, 1),
    'r50_layer2_b32': (32, 128, 128, 1, 28, 28, 1),
    'mbv2_depthwise_b32': (32, 576, 576, 576, 14, 14, 1),
}
SMOKE_SPEED_SHAPES = {'tiny': (1, 4, 4, 1, 5, 4, 1)}


class Recorder:
    """Collects results and rewrites the JSON file after every case."""

    def __init__(self, path: str, time_limit: float, argv: list[str]):
        self.path, self.t0, self.limit = path, time.time(), time_limit
        self.data = dict(
            command=' '.join(['python', 'tools/analysis_tools/gpu_check.py']
                             + argv),
            date=datetime.datetime.now(datetime.timezone.utc).isoformat(),
            torch=torch.__version__,
            triton=getattr(triton_pad.triton, '__version__', None),
            python=platform.python_version(), finished=False,
            self_check=[], correctness=[], speed=[], model=[])

    def out_of_time(self) -> bool:
        return time.time() - self.t0 > self.limit

    def add(self, section: str, case: dict) -> None:
        case['elapsed_s'] = round(time.time() - self.t0, 2)
        self.data[section].append(case)
        self.write()

    def skip(self, section: str, name: str) -> None:
        self.add(section, dict(name=name, skipped='time limit'))

    def write(self) -> None:
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.data, f, indent=1, default=str)
        os.replace(tmp, self.path)


# --------------------------------------------------------- correctness ---


def _inputs(n, c_in, c_out, groups, size, stride, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, *size, generator=g, dtype=torch.float64)
    w = torch.randn(c_out, c_in // groups, 3, 3, generator=g,
                    dtype=torch.float64) / (c_in // groups * 9)**0.5
    b = torch.randn(c_out, generator=g, dtype=torch.float64)
    ho, wo = (conv_out_size(s, 3, stride) for s in size)
    logits = torch.randn(n, len(DIL), ho, wo, generator=g,
                         dtype=torch.float64)
    return x, w, b, logits


def _run(impl, x, w, b, logits, mode, stride, groups, dtype, w_dtype,
         channels_last, device, autocast):
    """Outputs and grads (float64, CPU) of one implementation."""
    xd = x.to(device, dtype)
    if channels_last:
        xd = xd.contiguous(memory_format=torch.channels_last)
    leaves = [xd.requires_grad_()] + [
        t.to(device, w_dtype).requires_grad_() for t in (w, b)]
    lg = logits.to(device).requires_grad_()
    ctx = torch.autocast(device.type, dtype=autocast) if autocast else \
        torch.autocast(device.type, enabled=False)
    with ctx:
        if mode == 'hard':
            out = pad_conv2d_hard(*leaves, lg.argmax(1), DIL, stride, groups,
                                  impl=impl)
            diff = leaves
        else:
            if mode == 'soft':
                probs = torch.softmax(lg, 1)
            else:  # straight-through, fixed noise
                gen = torch.Generator(device=device).manual_seed(3)
                probs = gumbel_softmax(lg, tau=0.7, hard=True, generator=gen)
            probs = probs.to(dtype if autocast is None else torch.float32)
            out = pad_conv2d(*leaves, probs, DIL, stride, groups, impl=impl)
            diff = leaves + [lg]
    go = torch.randn(out.shape, generator=torch.Generator().manual_seed(9),
                     dtype=torch.float64).to(device, out.dtype)
    grads = torch.autograd.grad(out, diff, go)
    return [out.detach()] + [g.detach() for g in grads]


def _rel(a, e):
    return ((a.double().cpu() - e.double().cpu()).abs().max() /
            e.double().cpu().abs().max().clamp(min=1e-12)).item()


SMOKE_CASES = (  # (shape, dtype, mode, channels_last): one of each axis
    ('g1_s1', 'float32', 'soft', True), ('g1_s1', 'bfloat16',
                                         'straight_through', False),
    ('g1_s1', 'float32', 'hard', False), ('s2', 'float32',
                                          'straight_through', True),
    ('s2', 'bfloat16', 'hard', False), ('depthwise_s2', 'float32', 'soft',
                                        False))


def correctness_cases(smoke: bool):
    """(name, config) of every variant checked (``smoke``: one of each
    axis on tiny shapes)."""
    base = (2, 5, 7, 1, (7, 6), 1) if smoke else (2, 80, 96, 1, (13, 17), 1)
    shapes = {'g1_s1': base, 's2': base[:5] + (2, )}
    if smoke:
        shapes['depthwise_s2'] = (2, 6, 6, 6, (6, 7), 2)
    else:
        shapes.update({'groups4_s1': (2, 96, 64, 4, (13, 17), 1),
                       'depthwise_s2': (2, 64, 64, 64, (13, 17), 2)})
    combos = [(sh, dt, mode, cl) for sh in shapes
              for dt in ('float32', 'float16', 'bfloat16')
              for mode in ('soft', 'straight_through', 'hard')
              for cl in (False, True)]
    for sh, dt, mode, cl in (SMOKE_CASES if smoke else combos):
        dtype = getattr(torch, dt)
        yield (f'{sh}/{dt}/{mode}/{"channels_last" if cl else "nchw"}',
               dict(shape=shapes[sh], dtype=dtype, w_dtype=dtype, mode=mode,
                    channels_last=cl, autocast=None))
    for mode in ('soft', 'hard'):
        yield (f'g1_s1/autocast_bf16_fp32_weights/{mode}/channels_last',
               dict(shape=base, dtype=torch.float32, w_dtype=torch.float32,
                    mode=mode, channels_last=True, autocast=torch.bfloat16))


def check_case(name: str, cfg: dict, device: torch.device) -> dict:
    n, c_in, c_out, groups, size, stride = cfg['shape']
    x, w, b, logits = _inputs(n, c_in, c_out, groups, size, stride)
    dtype = cfg['autocast'] or cfg['dtype']
    # round the masters to the computed dtype: both sides see equal inputs
    x, w, b = (t.to(dtype).double() for t in (x, w, b))
    common = (x, w, b, logits, cfg['mode'], stride, groups)
    exp = _run('reference', *common, torch.float64, torch.float64,
               False, device, None)
    got = _run('triton', *common, cfg['dtype'], cfg['w_dtype'],
               cfg['channels_last'], device, cfg['autocast'])
    again = _run('triton', *common, cfg['dtype'], cfg['w_dtype'],
                 cfg['channels_last'], device, cfg['autocast'])
    if dtype == torch.float32:
        cudnn_err = None
        tol = {n: 1e-4 for n in GRADS}
    else:  # cuDNN's own error in this dtype, same inputs
        base = _run('reference', *common, dtype, dtype, cfg['channels_last'],
                    device, None)
        cudnn_err = {k: _rel(a, e) for k, a, e in zip(GRADS, base, exp)}
        tol = {k: max(4 * v, 1e-2 if dtype == torch.bfloat16 else 2e-3)
               for k, v in cudnn_err.items()}
    errors = {k: _rel(a, e) for k, a, e in zip(GRADS, got, exp)}
    dtypes_ok = got[0].dtype == dtype and all(
        g.dtype == t for g, t in zip(got[1:4], (
            cfg['dtype'], cfg['w_dtype'], cfg['w_dtype'])))
    return dict(name=name, errors=errors, tolerance=tol,
                cudnn_errors=cudnn_err,
                passed=all(errors[k] <= tol[k] for k in errors)
                and dtypes_ok,
                grad_dtypes_ok=dtypes_ok,
                deterministic=all(torch.equal(a, c)
                                  for a, c in zip(got, again)))


# ---------------------------------------------------------------- speed ---


def _timer(device: torch.device, repeats: int, warmup: int):

    def measure(fn: Callable[[], object]) -> float:
        """Median milliseconds of ``fn()``."""
        return time_run(fn, device, repeats, warmup) * 1e3

    return measure


def _peak_mib(device: torch.device, fn: Callable[[], object]):
    if device.type != 'cuda':
        return None
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def speed_case(name: str, shape: tuple, device: torch.device, repeats: int,
               warmup: int, impl: str) -> dict:
    n, c_in, c_out, groups, h, w, stride = shape
    dtype = torch.bfloat16
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, c_in, h, w, device=device, dtype=dtype,
                    generator=g).contiguous(memory_format=torch.channels_last)
    weight = (torch.randn(c_out, c_in // groups, 3, 3, device=device,
                          generator=g) * 0.05).to(dtype)
    bias = torch.zeros(c_out, device=device, dtype=dtype)
    ho, wo = conv_out_size(h, 3, stride), conv_out_size(w, 3, stride)
    probs = torch.softmax(torch.randn(n, len(DIL), ho, wo, device=device,
                                      generator=g), 1).to(dtype)
    index = probs.argmax(1)
    measure = _timer(device, repeats, warmup)
    xg, wg, bg, pg = (t.detach().requires_grad_()
                      for t in (x, weight, bias, probs))

    def conv_fwd():
        with torch.no_grad():
            return F.conv2d(x, weight, bias, stride, 2, 2, groups)

    def conv_train():
        out = F.conv2d(xg, wg, bg, stride, 2, 2, groups)
        out.backward(torch.ones_like(out))

    def pad_fwd():
        with torch.no_grad():
            return pad_conv2d(x, weight, bias, probs, DIL, stride, groups,
                              impl=impl)

    def pad_train():
        out = pad_conv2d(xg, wg, bg, pg, DIL, stride, groups, impl=impl)
        out.backward(torch.ones_like(out))

    def pad_hard():
        with torch.no_grad():
            return pad_conv2d_hard(x, weight, bias, index, DIL, stride,
                                   groups, impl=impl)

    res = dict(name=name, shape=dict(zip(
        ('N', 'C_in', 'C_out', 'groups', 'H', 'W', 'stride'), shape)),
        impl=impl, dtype='bfloat16', memory_format='channels_last')
    for key, conv, pad in (('fwd', conv_fwd, pad_fwd),
                           ('fwd_bwd', conv_train, pad_train),
                           ('hard_inference', conv_fwd, pad_hard)):
        t_conv, t_pad = measure(conv), measure(pad)
        res[f'{key}_ms'] = dict(cudnn=t_conv, pad=t_pad)
        res[f'{key}_ratio'] = t_pad / t_conv
    mem_conv = _peak_mib(device, conv_train)
    mem_pad = _peak_mib(device, pad_train)
    res['fwd_bwd_peak_mib'] = dict(cudnn=mem_conv, pad=mem_pad)
    res['fwd_bwd_peak_ratio'] = (mem_pad / mem_conv
                                 if mem_conv and mem_pad else None)
    return res


# ---------------------------------------------------------------- model ---


class PADConv(nn.Module):
    """3x3 PAD conv with a 1x1 probe (Gumbel straight-through in training,
    soft probabilities in eval), through ``pad_mm.ops`` only."""

    def __init__(self, c_in, c_out, stride=1, dilations=DIL, impl='auto'):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 3, 3) *
                                   (2 / (9 * c_in))**0.5)
        self.probe = nn.Conv2d(c_in, len(dilations), 1, stride)
        self.stride, self.dilations, self.impl = stride, dilations, impl

    def forward(self, x):
        logits = self.probe(x)
        probs = gumbel_softmax(logits.float(), tau=1.0, hard=True) \
            if self.training else torch.softmax(logits.float(), 1)
        return pad_conv2d(x, self.weight, None, probs, self.dilations,
                          self.stride, impl=self.impl)


class Bottleneck(nn.Module):

    def __init__(self, c_in, planes, stride, dilation, pad, impl):
        super().__init__()
        c_out = planes * 4
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        if pad:
            self.conv2 = PADConv(planes, planes, stride,
                                 tuple(d * dilation for d in DIL), impl)
        else:
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation,
                                   dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ with a ResNet (output stride 8): stem, 4 stages (layer3
    dilation 2, layer4 dilation 4), ASPP (rates 12/24/36), decoder on the
    stride-4 features. ``pad=True``: layer4's 3x3 convs are PAD convs."""

    def __init__(self, depths=(3, 4, 23, 3), width=64, classes=19,
                 pad=False, impl='auto'):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        layers, c_in = [], width
        for i, (depth, stride, dil) in enumerate(
                zip(depths, (1, 2, 1, 1), (1, 1, 2, 4))):
            planes = width * 2**i
            blocks = []
            for j in range(depth):
                blocks.append(Bottleneck(c_in, planes, stride if j == 0 else 1,
                                         dil, pad and i == 3, impl))
                c_in = planes * 4
            layers.append(nn.Sequential(*blocks))
        self.layers = nn.ModuleList(layers)
        aspp_c = width * 4
        self.aspp = nn.ModuleList(
            [nn.Conv2d(c_in, aspp_c, 1, bias=False)] +
            [nn.Conv2d(c_in, aspp_c, 3, 1, r, r, bias=False)
             for r in (12, 24, 36)])
        self.pool = nn.Conv2d(c_in, aspp_c, 1, bias=False)
        self.project = nn.Sequential(
            nn.Conv2d(aspp_c * 5, aspp_c, 1, bias=False),
            nn.BatchNorm2d(aspp_c), nn.ReLU(inplace=True))
        self.low = nn.Sequential(nn.Conv2d(width * 4, 48, 1, bias=False),
                                 nn.BatchNorm2d(48), nn.ReLU(inplace=True))
        self.fuse = nn.Sequential(
            nn.Conv2d(aspp_c + 48, aspp_c, 3, 1, 1, bias=False),
            nn.BatchNorm2d(aspp_c), nn.ReLU(inplace=True),
            nn.Conv2d(aspp_c, classes, 1))

    def forward(self, img):
        x = self.stem(img)
        low = x = self.layers[0](x)
        for layer in self.layers[1:]:
            x = layer(x)
        pooled = F.interpolate(self.pool(x.mean((2, 3), keepdim=True)),
                               x.shape[2:])
        x = self.project(torch.cat([m(x) for m in self.aspp] + [pooled], 1))
        x = F.interpolate(x, low.shape[2:], mode='bilinear')
        x = self.fuse(torch.cat([x, self.low(low)], 1))
        return F.interpolate(x, img.shape[2:], mode='bilinear')


def model_case(device: torch.device, smoke: bool, repeats: int,
               warmup: int) -> dict:
    """Training-step time (forward, loss, backward, SGD step) of PAD vs
    vanilla DeepLabV3+ R101 under bf16 autocast, channels_last."""
    if smoke:
        kw, batch, size = dict(depths=(1, 1, 1, 1), width=8), 1, (32, 48)
    else:
        kw, batch, size = dict(), 2, (512, 1024)
    g = torch.Generator(device=device).manual_seed(0)
    img = torch.randn(batch, 3, *size, device=device, generator=g).to(
        memory_format=torch.channels_last)
    target = torch.randint(0, 19, (batch, *size), device=device, generator=g)
    res = dict(name='deeplabv3plus_r101' if not smoke else 'tiny_deeplab',
               batch=batch, size=list(size), autocast='bfloat16')
    measure = _timer(device, repeats, warmup)
    for name, pad in (('vanilla', False), ('pad', True)):
        torch.manual_seed(0)
        model = DeepLabV3Plus(pad=pad, **kw).to(device).to(
            memory_format=torch.channels_last).train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

        def step():
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = F.cross_entropy(model(img), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        res[f'{name}_step_ms'] = measure(step)
        res[f'{name}_peak_mib'] = _peak_mib(device, step)
        del model, opt
    res['step_ratio'] = res['pad_step_ms'] / res['vanilla_step_ms']
    res['dispatch'] = dispatch.dispatch_report()
    return res


# ----------------------------------------------------------------- main ---


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='gpu_check.json')
    p.add_argument('--smoke', action='store_true',
                   help="tiny cases on the CPU in Triton's interpreter (CI)")
    p.add_argument('--time-limit', type=float, default=450.0,
                   help='seconds; later cases are recorded as skipped')
    p.add_argument('--repeats', type=int, default=20)
    p.add_argument('--warmup', type=int, default=5)
    p.add_argument('--sections', default='self_check,correctness,speed,model')
    args = p.parse_args(argv)
    if args.repeats < 20:
        p.error(f'--repeats must be >= 20, got {args.repeats}')
    if args.smoke:  # the interpreter is slow: exercise the code only
        args.repeats, args.warmup = 1, 0
    unknown = set(args.sections.split(',')) - {'self_check', 'correctness',
                                               'speed', 'model'}
    if unknown:
        p.error(f'--sections: unknown {sorted(unknown)}; allowed: '
                'self_check,correctness,speed,model')
    return args


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if not HAS_TRITON:
        raise SystemExit('gpu_check.py needs the triton package')
    if args.smoke:
        if os.environ.get('TRITON_INTERPRET') != '1':
            raise SystemExit('--smoke needs TRITON_INTERPRET=1 before '
                             'triton is imported (run it as a script)')
        device = torch.device('cpu')
        # small chunks: the smoke case also runs the chunked backward
        triton_pad.BWD_BUFFER_BYTES = 1
    elif not torch.cuda.is_available():
        raise SystemExit('gpu_check.py needs a CUDA GPU (or --smoke)')
    else:
        device = torch.device('cuda')
        torch.backends.cudnn.benchmark = True
    rec = Recorder(args.out, args.time_limit, argv)
    rec.data['device'] = (torch.cuda.get_device_name(device)
                          if device.type == 'cuda' else 'cpu (interpreter)')
    sections = args.sections.split(',')
    dtypes = [torch.float32, torch.bfloat16] if args.smoke else [
        torch.float32, torch.float16, torch.bfloat16]
    # fp32 correctness with TF32 off (tight tolerances)
    tf32 = _set_tf32(False)
    try:
        if 'self_check' in sections and not args.smoke:
            for hard in (False, True):
                fn = (triton_pad.pad_conv2d_hard_triton if hard else
                      triton_pad.pad_conv2d_triton)
                for dtype in dtypes:
                    name = f'{"hard" if hard else "soft"}/{dtype}'
                    if rec.out_of_time():
                        rec.skip('self_check', name)
                        continue
                    try:
                        err = dispatch.self_check(
                            fn, device, dtype, hard=hard,
                            supports=triton_pad.supports)
                        rec.add('self_check', dict(name=name, passed=True,
                                                   errors=err))
                    except Exception as e:
                        rec.add('self_check', dict(name=name, passed=False,
                                                   error=repr(e)))
        if 'correctness' in sections:
            for name, cfg in correctness_cases(args.smoke):
                if rec.out_of_time():
                    rec.skip('correctness', name)
                    continue
                try:
                    rec.add('correctness', check_case(name, cfg, device))
                except Exception as e:
                    rec.add('correctness', dict(name=name, passed=False,
                                                error=repr(e)))
    finally:
        _set_tf32(tf32)
    if 'speed' in sections:
        shapes = SMOKE_SPEED_SHAPES if args.smoke else SPEED_SHAPES
        for name, shape in shapes.items():
            if rec.out_of_time():
                rec.skip('speed', name)
                continue
            try:
                rec.add('speed', speed_case(name, shape, device,
                                            args.repeats, args.warmup,
                                            'triton'))
            except Exception as e:
                rec.add('speed', dict(name=name, error=repr(e)))
    if 'model' in sections:
        if rec.out_of_time():
            rec.skip('model', 'deeplabv3plus_r101')
        else:
            try:
                rec.add('model', model_case(device, args.smoke, args.repeats,
                                            args.warmup))
            except Exception as e:
                rec.add('model', dict(name='deeplabv3plus_r101',
                                      error=repr(e)))
    rec.data['finished'] = True
    rec.data['total_s'] = round(time.time() - rec.t0, 1)
    rec.write()
    return rec.data


def _set_tf32(on: bool) -> bool:
    """Set cuDNN's (and our kernels') fp32 precision; returns the old."""
    conv = getattr(torch.backends.cudnn, 'conv', None)
    old = tf32_enabled()
    if conv is not None and hasattr(conv, 'fp32_precision'):
        conv.fp32_precision = 'tf32' if on else 'ieee'
    else:
        torch.backends.cudnn.allow_tf32 = on
    return old


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
