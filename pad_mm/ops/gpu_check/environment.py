"""Sections 1 (environment) and 2 (warm compile, cold first call)."""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
import time

import torch

from .. import (HAS_TRITON, dispatch_report, pad_conv2d, pad_conv2d_hard,
                select_impl, tf32_enabled)
from ..calls import sync
from ..impls.triton_kernels import interpreting, triton
from .cases import CallSpec
from .child import CaseIter, Context
from .runner import child_env

__all__ = ['environment', 'warm_compile', 'planned_calls', 'first_call']

OPENMMLAB = ('mmengine', 'mmcv', 'mmseg', 'mmpretrain', 'mmdet')


def environment(ctx: Context) -> CaseIter:
    """Versions, device, flags, and that nothing of OpenMMLab is
    imported."""

    def versions():
        import pad_mm
        major = int(triton.__version__.split('.')[0]) if HAS_TRITON else 0
        return dict(python=platform.python_version(),
                    torch=torch.__version__, triton=getattr(
                        triton, '__version__', None),
                    cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(),
                    pad_mm=pad_mm.__version__,
                    status='passed' if major >= 3 else 'failed')

    def device():
        if ctx.device.type != 'cuda':
            return dict(device='cpu (interpreter)',
                        triton_interpret=interpreting(),
                        status='passed' if interpreting() else 'failed')
        p = torch.cuda.get_device_properties(ctx.device)
        cap = torch.cuda.get_device_capability(ctx.device)
        return dict(device=p.name, capability=list(cap),
                    memory_gib=round(p.total_memory / 2**30, 1),
                    multiprocessors=p.multi_processor_count,
                    triton_interpret=interpreting(),
                    status='passed' if cap >= (8, 0) and not interpreting()
                    else 'failed')

    def flags():
        conv = getattr(torch.backends.cudnn, 'conv', None)
        env = os.environ.get('PAD_MM_IMPL', '')
        return dict(tf32_enabled=tf32_enabled(),
                    cudnn_conv_fp32_precision=getattr(
                        conv, 'fp32_precision', None),
                    cudnn_benchmark=torch.backends.cudnn.benchmark,
                    deterministic=torch.are_deterministic_algorithms_enabled(
                    ), PAD_MM_IMPL=env or None,
                    status='passed' if env in ('', 'auto') else 'failed',
                    note="PAD_MM_IMPL must be unset for 'auto' results")

    def imports():
        loaded = sorted(m for m in sys.modules
                        if m.split('.')[0] in OPENMMLAB
                        and sys.modules[m] is not None)
        return dict(openmmlab_modules=loaded,
                    status='failed' if loaded else 'passed')

    yield 'versions', versions
    yield 'device', device
    yield 'flags', flags
    yield 'imports', imports


def planned_calls(smoke: bool) -> list[CallSpec]:
    """The Triton calls of the later sections (distinct), whose kernels
    the warm compile compiles ahead."""
    from . import correctness, graphs, model_step, speed
    timed = speed.speed_specs(smoke)
    # the speed and memory sections also time the backward's GEMM path
    specs = (correctness.quick_specs(smoke) + timed + [
        dataclasses.replace(s, bwd_path='gemm') for s in timed
        if s.mode != 'hard'] + model_step.layer_specs(smoke)
             + correctness.matrix_specs(smoke) + graphs.graph_specs(smoke))
    out = []
    for s in specs:
        if s not in out and s.n > 0:
            out.append(s)
    return out


def _compile_in_workers(specs: list[CallSpec], cap: int, workers: int,
                        timeout: float) -> dict:
    # calls that share kernel variants go to the same worker (it compiles
    # each variant once): sorted by what selects a variant, then cut in
    # contiguous parts
    specs = sorted(specs, key=lambda s: (
        s.autocast or s.dtype, s.tf32 or '', s.mode == 'hard', s.k,
        len(s.dil), s.stride, s.layout))
    size = -(-len(specs) // workers)
    parts = [specs[i:i + size] for i in range(0, len(specs), size)]
    env = child_env(smoke=False)  # compiling needs the real Triton
    t = time.time()
    procs = [subprocess.Popen(
        [sys.executable, '-m', 'pad_mm.ops.gpu_check.compile_worker',
         str(cap), json.dumps([s.describe() for s in part])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for part in parts if part]
    compiled, errors = [], []
    for proc in procs:
        try:
            out, err = proc.communicate(
                timeout=max(1.0, timeout - (time.time() - t)))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            errors.append('a worker ran out of time')
        else:
            if proc.returncode:
                errors.append(err[-1500:])
        compiled += [json.loads(line) for line in out.splitlines()
                     if line.startswith('{')]
    wall = time.time() - t
    return dict(target=f'sm_{cap}', calls=len(specs), workers=len(procs),
                variants=len(compiled),
                distinct_variants=len({c['variant'] for c in compiled}),
                wall_s=round(wall, 2),
                sum_compile_s=round(sum(c['seconds'] for c in compiled), 2),
                slowest=sorted(compiled, key=lambda c: -c['seconds'])[:5],
                errors=errors, status='failed' if errors else 'passed')


def _layer(spec: CallSpec, device: torch.device, hard: bool):
    g = torch.Generator(device=device).manual_seed(0)
    # as in a network under autocast: bf16 activations, fp32 weights
    x = torch.randn(spec.n, spec.c_in, *spec.size, device=device,
                    generator=g).to(torch.bfloat16).contiguous(
                        memory_format=torch.channels_last)
    w = (torch.randn(spec.c_out, spec.c_in, 3, 3, device=device,
                     generator=g) * 0.02).to(
                         torch.float32 if spec.autocast else x.dtype)
    p = torch.softmax(torch.randn(spec.n, len(spec.dil), *spec.out_size,
                                  device=device, generator=g), 1)
    return x.requires_grad_(not hard), w.requires_grad_(not hard), p


def first_call(spec: CallSpec, device: torch.device, impl: str,
               hard: bool) -> dict:
    """Wall seconds of the first and second call (soft: forward +
    backward; hard: inference) of ``impl`` at ``spec`` in this process,
    and what ``auto`` chose."""
    x, w, p = _layer(spec, device, hard)
    ac = torch.autocast(device.type, dtype=torch.bfloat16,
                        enabled=spec.autocast is not None)

    def call():
        with ac:
            if hard:
                with torch.no_grad():
                    pad_conv2d_hard(x, w, None, p.argmax(1), spec.dil,
                                    impl=impl)
            else:
                out = pad_conv2d(x, w, None, p, spec.dil, impl=impl)
                out.backward(torch.ones_like(out))
        sync(device)

    times = []
    for _ in range(2):
        t = time.time()
        call()
        times.append(time.time() - t)
    with ac:
        chosen = select_impl(x, w, p.argmax(1) if hard else p, spec.dil, 1,
                             1, impl, hard)
    return dict(spec=spec.describe(), impl=impl, chosen=chosen,
                first_call_s=round(times[0], 3),
                second_call_s=round(times[1], 4),
                dispatch=dispatch_report() if impl == 'auto' else None)


def warm_compile(ctx: Context) -> CaseIter:
    """Compile every kernel specialisation the later sections launch, in
    parallel worker processes, then time the first calls of ``auto``
    (self-check, timing, kernel loads) and of forced Triton."""
    if ctx.device.type == 'cuda':
        major, minor = torch.cuda.get_device_capability(ctx.device)
        cap, workers = 10 * major + minor, min(16, os.cpu_count() or 1)
    else:  # no device needed to compile: sm_90 as in the kernel report
        cap, workers = 90, min(2, os.cpu_count() or 1)
    specs = planned_calls(ctx.smoke)
    if ctx.smoke:
        specs = specs[:1]
    yield 'warm_compile', lambda: _compile_in_workers(
        specs, cap, workers, 0.7 * ctx.time_left())
    layer = CallSpec(1, 8, 8, (6, 10), 'float32', dil=(2, 4, 8),
                     autocast='bfloat16') if ctx.smoke else CallSpec(
        2, 512, 512, (32, 64), 'float32', dil=(2, 4, 8),
        autocast='bfloat16')
    yield 'auto_first_call/soft_fwd_bwd', lambda: first_call(
        layer, ctx.device, 'auto', False)
    yield 'auto_first_call/hard', lambda: first_call(
        layer, ctx.device, 'auto', True)
    yield 'triton_first_call/soft_fwd_bwd', lambda: first_call(
        layer, ctx.device, 'triton', False)
