"""Section 5 (model): a training step of DeepLabV3+ ResNet-101
(:mod:`.deeplab`, plain torch) at 512x1024, batch 2, bf16 autocast,
channels_last, PAD vs vanilla: step time, peak memory, first-step
latency."""
from __future__ import annotations

import dataclasses
import gc
import time

import torch
import torch.nn.functional as F

from .. import dispatch_report
from ..calls import sync
from .cases import CallSpec, peak_mib, time_ms
from .child import CaseIter, Context
from .deeplab import DeepLabV3Plus

__all__ = ['model', 'model_case', 'layer_specs', 'TARGET', 'STEPS']

#: issue 27: the PAD step at most 1.05x the vanilla step
TARGET = 1.05
#: timed steps per model (after the first step and one warm-up step)
STEPS = 10


def layer_specs(smoke: bool) -> list[CallSpec]:
    """The PAD calls of the model (layer4's 3x3 convs: dilation 1 in the
    first block, 2 in the others; input 1/16 of the image)."""
    if smoke:
        base = CallSpec(2, 32, 32, (2, 4), 'float32', autocast='bfloat16',
                        bias=False)
    else:
        base = CallSpec(2, 512, 512, (32, 64), 'float32',
                        autocast='bfloat16', bias=False)
    return [dataclasses.replace(base, dil=d) for d in ((1, 2, 4),
                                                       (2, 4, 8))]


def model_case(pad: bool, ctx: Context) -> dict:
    """One model's training steps (forward under bf16 autocast, loss,
    backward, SGD step)."""
    dev = ctx.device
    batch, size = (2, (32, 64)) if ctx.smoke else (2, (512, 1024))
    g = torch.Generator(device=dev).manual_seed(0)
    img = torch.randn(batch, 3, *size, device=dev, generator=g).contiguous(
        memory_format=torch.channels_last)
    label = torch.randint(0, 19, (batch, *size), device=dev, generator=g)
    torch.manual_seed(0)
    net = DeepLabV3Plus(pad, small=ctx.smoke).to(dev).to(
        memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9,
                          weight_decay=5e-4)

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            loss = F.cross_entropy(net(img), label, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t = time.time()
    step()  # cudnn.benchmark, PAD self-checks and timings, compiles
    sync(dev)
    first = time.time() - t
    steps = 1 if ctx.smoke else STEPS
    ms = time_ms(step, dev, steps, 0 if ctx.smoke else 1)
    peak = peak_mib(dev, step)
    res = dict(pad=pad, batch=batch, size=list(size),
               autocast='bfloat16', memory_format='channels_last',
               params_m=round(sum(p.numel() for p in net.parameters())
                              / 1e6, 3),
               first_step_s=round(first, 3), step_ms=ms, peak_mib=peak,
               steps_timed=steps)
    if pad:
        res['dispatch'] = dispatch_report()
    del net, opt
    gc.collect()
    if dev.type == 'cuda':
        torch.cuda.empty_cache()
    return res


def model(ctx: Context) -> CaseIter:
    runs: dict[str, dict] = {}

    def run(name: str, pad: bool):
        def fn():
            runs[name] = model_case(pad, ctx)
            return runs[name]
        return fn

    def compare():
        v, p = runs['vanilla'], runs['pad']
        ratio = p['step_ms'] / v['step_ms']
        mem = p['peak_mib'] / v['peak_mib'] if v['peak_mib'] else None
        return dict(step_ratio=ratio, peak_ratio=mem,
                    first_step_ratio=p['first_step_s'] / v['first_step_s'],
                    target={f'step <= {TARGET}x vanilla': ratio <= TARGET})

    yield 'deeplabv3plus_r101/vanilla', run('vanilla', False)
    yield 'deeplabv3plus_r101/pad', run('pad', True)
    yield 'deeplabv3plus_r101/pad_vs_vanilla', compare
