"""Section 4 (speed): cuDNN, forced Triton, the reference and ``auto``,
for the forward (soft inference), forward + backward and hard inference
(10% of the pixels off the dominant dilation), CUDA events, values
checked at every shape, per-kernel CUDA-event times with TFLOP/s and
GB/s; then the tile sweep (each kernel's candidate tiles, timed and
checked)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import pad_conv2d, pad_conv2d_hard, select_impl, triton_pad
from ..impls.triton_tiles import TILE_CANDIDATES, tile_override
from .cases import DTYPES, CallSpec, rel_err, tf32, time_ms
from .child import CaseIter, Context

__all__ = ['SPEED_SHAPES', 'speed_specs', 'layer_tensors', 'layer_fns',
           'speed', 'speed_case', 'kernel_times', 'TARGETS', 'tile_sweep',
           'SWEPT_KERNELS', 'SWEEP_SHAPE']

_L4_OS8 = dict(n=2, c_in=512, c_out=512, size=(64, 128), dil=(4, 8, 16),
               bias=False)
_L4_OS16 = dict(_L4_OS8, size=(32, 64), dil=(2, 4, 8))
#: ResNet-101 layer4's 3x3 conv on a 512x1024 crop, output stride 8 / 16
SPEED_SHAPES: dict[str, CallSpec] = {
    'r101_l4_os8_b2/bf16/channels_last': CallSpec(**_L4_OS8),
    'r101_l4_os8_b8/bf16/channels_last': CallSpec(**dict(_L4_OS8, n=8)),
    'r101_l4_os16_b2/bf16/channels_last': CallSpec(**_L4_OS16),
    'r101_l4_os16_b8/bf16/channels_last': CallSpec(**dict(_L4_OS16, n=8)),
    'r101_l4_os8_b2/bf16/nchw': CallSpec(**_L4_OS8, layout='nchw'),
    'r101_l4_os8_b2/fp16/channels_last': CallSpec(**_L4_OS8,
                                                  dtype='float16'),
    'r101_l4_os8_b2/fp32_tf32/channels_last': CallSpec(
        **_L4_OS8, dtype='float32', tf32='conv'),
}
SMOKE_SHAPES: dict[str, CallSpec] = {
    'tiny/bf16/channels_last': CallSpec(1, 8, 8, (6, 10), bias=False)}
#: issue 27's targets: ratio to cuDNN of the same shape (bf16,
#: channels_last)
TARGETS = {'fwd_bwd': 1.5, 'hard_inference': 1.1}
DIFFERING = 0.10
_FLOOR = {torch.float32: 5e-3, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def speed_specs(smoke: bool) -> list[CallSpec]:
    shapes = SMOKE_SHAPES if smoke else SPEED_SHAPES
    return [dataclasses.replace(s, mode=m) for s in shapes.values()
            for m in ('soft', 'hard')]


def layer_tensors(spec: CallSpec, device: torch.device) -> dict:
    """Input, weight, probs (compute dtype), an index with
    :data:`DIFFERING` of its pixels off dilation 0, grad_out."""
    dt = DTYPES[spec.dtype]
    g = torch.Generator(device=device).manual_seed(0)
    fmt = torch.channels_last if spec.layout == 'channels_last' else \
        torch.contiguous_format
    x = torch.randn(spec.n, spec.c_in, *spec.size, device=device,
                    generator=g).to(dt).contiguous(memory_format=fmt)
    w = (torch.randn(spec.c_out, spec.c_in, 3, 3, device=device,
                     generator=g) * (2 / (9 * spec.c_in))**0.5).to(dt)
    ho, wo = spec.out_size
    probs = torch.softmax(torch.randn(spec.n, len(spec.dil), ho, wo,
                                      device=device, generator=g), 1).to(dt)
    off = torch.rand(spec.n, ho, wo, device=device, generator=g) < DIFFERING
    other = torch.randint(1, len(spec.dil), (spec.n, ho, wo), device=device,
                          generator=g)
    index = torch.where(off, other, torch.zeros_like(other))
    go = torch.randn(spec.n, spec.c_out, ho, wo, device=device,
                     generator=g).to(dt).contiguous(memory_format=fmt)
    return dict(x=x, w=w, probs=probs, index=index, go=go,
                differing=off.float().mean().item())


def layer_fns(t: dict, spec: CallSpec) -> dict[str, dict[str, Callable]]:
    """mode -> implementation -> function of one call (``'cudnn'``: a conv
    at the dominant dilation; fwd_bwd's ``'triton_gemm'``: Triton with
    grad_input by the backward's GEMM path). fwd_bwd functions return the
    gradients."""
    d0 = spec.dil[0]
    x, w, probs, index, go = t['x'], t['w'], t['probs'], t['index'], t['go']

    def conv_fwd():
        with torch.no_grad():
            return F.conv2d(x, w, None, spec.stride, d0, d0)

    def conv_train():
        leaves = [v.detach().requires_grad_() for v in (x, w)]
        out = F.conv2d(*leaves, None, spec.stride, d0, d0)
        return torch.autograd.grad(out, leaves, go)

    def pad_fwd(impl):
        def run():
            with torch.no_grad():
                return pad_conv2d(x, w, None, probs, spec.dil, impl=impl)
        return run

    def pad_train(impl, path='auto'):
        def run():
            leaves = [v.detach().requires_grad_() for v in (x, w, probs)]
            with triton_pad.bwd_input_path(path):
                out = pad_conv2d(leaves[0], leaves[1], None, leaves[2],
                                 spec.dil, impl=impl)
                return torch.autograd.grad(out, leaves, go)
        return run

    def pad_hard(impl):
        def run():
            with torch.no_grad():
                return pad_conv2d_hard(x, w, None, index, spec.dil,
                                       impl=impl)
        return run

    impls = ('triton', 'reference', 'auto')
    return dict(
        fwd=dict(cudnn=conv_fwd, **{i: pad_fwd(i) for i in impls}),
        # triton_gemm: grad_input by the backward's GEMM path (no buffer)
        fwd_bwd=dict(cudnn=conv_train, **{i: pad_train(i) for i in impls},
                     triton_gemm=pad_train('triton', 'gemm')),
        hard_inference=dict(cudnn=conv_fwd,
                            **{i: pad_hard(i) for i in impls}))


def _values(t: dict, spec: CallSpec, fns: dict) -> dict:
    """Errors of Triton and ``auto`` (and of the reference in the same
    dtype, which sets the tolerance) against the float32 reference with
    TF32 off."""
    dt = DTYPES[spec.dtype]
    f32 = dict(t, **{k: t[k].float() for k in ('x', 'w', 'probs', 'go')})
    with tf32(None):
        truth_fns = layer_fns(f32, dataclasses.replace(spec, dtype='float32'))
        truth = {m: _as_list(truth_fns[m]['reference']())
                 for m in ('fwd_bwd', 'hard_inference')}
        truth['fwd'] = [truth_fns['fwd']['reference']().float()]
    res, tol = {}, {}
    for impl in ('reference', 'triton', 'auto'):
        for m in ('fwd', 'fwd_bwd', 'hard_inference'):
            got = _as_list(fns[m][impl]())
            res[f'{impl}/{m}'] = max(rel_err(a.double(), e.double())
                                     for a, e in zip(got, truth[m]))
    got = _as_list(fns['fwd_bwd']['triton_gemm']())
    res['triton_gemm/fwd_bwd'] = max(rel_err(a.double(), e.double())
                                     for a, e in zip(got, truth['fwd_bwd']))
    for m in ('fwd', 'fwd_bwd', 'hard_inference'):
        tol[m] = max(4 * res[f'reference/{m}'], _FLOOR[dt])
    ok = all(res[f'{i}/{m}'] <= tol[m] for i in ('triton', 'auto')
             for m in tol) and res['triton_gemm/fwd_bwd'] <= tol['fwd_bwd']
    return dict(errors=res, tolerance=tol, values_ok=ok)


def _as_list(v) -> list[Tensor]:
    return [g.float() for g in v] if isinstance(v, (tuple, list)) else \
        [v.float()]


def kernel_times(spec: CallSpec, t: dict, hard: bool,
                 device: torch.device, repeats: int,
                 warmup: int = 1,
                 only: str | None = None) -> dict[str, dict]:
    """CUDA-event time of each Triton kernel of one call (soft: forward
    and backward; hard: inference): the call's launches are recorded
    (:func:`~pad_mm.ops.impls.triton_pad.record_launches`, with this
    call's tensors) and each is relaunched alone, median of ``repeats``;
    summed per kernel name (a chunked backward launches some kernels
    once per chunk). ``only``: time only the kernel of that name."""
    sel = t['index'] if hard else t['probs']
    launches = triton_pad.record_launches(
        t['x'], t['w'], None, sel, spec.dil, spec.stride, spec.groups,
        hard=hard, backward=not hard)
    out: dict[str, dict] = {}
    for launch in launches:
        if only is not None and launch.kernel.fn.__name__ != only:
            continue
        def run(launch=launch):
            launch.kernel[launch.grid](*launch.args, **launch.meta)
        us = time_ms(run, device, repeats, warmup) * 1e3
        row = out.setdefault(launch.kernel.fn.__name__,
                             dict(us=0.0, launches=0))
        row['us'] = round(row['us'] + us, 1)
        row['launches'] += 1
    return out


def _with_roofline(times: dict, spec: CallSpec, family: str) -> dict:
    """Attach TFLOP/s and GB/s of the Triton kernels from the kernel
    report's analytic FLOPs and HBM bytes (same shape)."""
    try:
        from ..kernel_report import roofline
        roof = roofline((spec.n, spec.c_in, spec.c_out, *spec.size,
                         spec.stride, spec.dil),
                        elt=DTYPES[spec.dtype].itemsize)['kernels']
    except Exception as err:  # the report's model may not know a kernel
        return dict(kernels=times, roofline_error=repr(err))
    for name, row in times.items():
        for key, r in roof.items():
            base = key.split(' ')[0]
            if name != base + '_kernel':
                continue
            if key.startswith('fwd') and family not in key:
                continue
            s = row['us'] * 1e-6
            row.update(roofline_key=key, tflops=round(
                (r['tensor_flops'] + r['cuda_core_flops']) / s / 1e12, 1),
                gbps=round(r['hbm_bytes'] / s / 1e9, 1),
                predicted_us=round(r['us'], 1))
    return dict(kernels=times)


def speed_case(spec: CallSpec, ctx: Context) -> dict:
    t = layer_tensors(spec, ctx.device)
    fns = layer_fns(t, spec)
    res: dict = dict(spec=spec.describe(),
                     differing_share=round(t['differing'], 4))
    with tf32(spec.tf32):
        for m, by_impl in fns.items():
            ms = {i: time_ms(f, ctx.device, ctx.repeats, ctx.warmup)
                  for i, f in by_impl.items()}
            res[m] = dict(ms=ms, ratio_to_cudnn={
                i: v / ms['cudnn'] for i, v in ms.items() if i != 'cudnn'})
        res['auto_choice'] = dict(
            fwd_bwd=select_impl(t['x'], t['w'], t['probs'].detach()
                                .requires_grad_(), spec.dil, 1, 1),
            hard_inference=select_impl(t['x'], t['w'], t['index'],
                                       spec.dil, 1, 1, hard=True))
        res.update(_values(t, spec, fns))
        res['per_kernel'] = {
            m: _with_roofline(kernel_times(spec, t, m != 'fwd_bwd',
                                           ctx.device, ctx.repeats,
                                           ctx.warmup),
                              spec, 'soft' if m == 'fwd_bwd' else 'hard')
            for m in ('fwd_bwd', 'hard_inference')}
    if spec.dtype == 'bfloat16' and spec.layout == 'channels_last':
        res['targets'] = {
            f'{m} <= {lim}x cuDNN': res[m]['ratio_to_cudnn']['triton'] <= lim
            for m, lim in TARGETS.items()}
    res['status'] = 'passed' if res['values_ok'] else 'failed'
    return res


#: the kernel each :data:`TILE_CANDIDATES` entry tiles
SWEPT_KERNELS = {'fwd': 'fwd_kernel', 'cols': 'bwd_cols_kernel',
                 'input_gemm': 'bwd_input_gemm_kernel',
                 'weight': 'bwd_weight_kernel'}
#: the shape of the tile sweep (the first of :data:`SPEED_SHAPES`)
SWEEP_SHAPE = 'r101_l4_os8_b2/bf16/channels_last'


def tile_sweep(spec: CallSpec, ctx: Context) -> dict:
    """Each kernel's :data:`TILE_CANDIDATES` at ``spec`` (soft forward +
    backward; the grad_input GEMM on its path): the kernel's launches
    recorded with the tiles and relaunched alone (CUDA events, median of
    ``repeats``, summed over its launches), and the call's values and
    gradients under those tiles against the fp32 reference (the speed
    section's tolerance). ``best``: the fastest candidate whose values
    pass, ``gain``: the default's time over the best one's."""
    t = layer_tensors(spec, ctx.device)
    dt = DTYPES[spec.dtype]
    f32 = dict(t, **{k: t[k].float() for k in ('x', 'w', 'probs', 'go')})
    with tf32(None):
        truth = _as_list(layer_fns(f32, dataclasses.replace(
            spec, dtype='float32'))['fwd_bwd']['reference']())
    fns = layer_fns(t, spec)
    base = _as_list(fns['fwd_bwd']['reference']())
    tol = max(4 * max(rel_err(a.double(), e.double())
                      for a, e in zip(base, truth)), _FLOOR[dt])
    res: dict = dict(spec=spec.describe(), tolerance=tol, kernels={})
    for kernel, cands in TILE_CANDIDATES.items():
        path = 'gemm' if kernel == 'input_gemm' else 'auto'
        rows = []
        for tiles in cands:
            with tile_override(kernel, tiles), \
                    triton_pad.bwd_input_path(path):
                timed = kernel_times(spec, t, False, ctx.device, ctx.repeats,
                                     ctx.warmup, only=SWEPT_KERNELS[kernel])
                got = _as_list(fns['fwd_bwd'][
                    'triton_gemm' if path == 'gemm' else 'triton']())
            err = max(rel_err(a.double(), e.double())
                      for a, e in zip(got, truth))
            row = timed.get(SWEPT_KERNELS[kernel], dict(us=0.0, launches=0))
            rows.append(dict(tiles=tiles, us=row['us'],
                             launches=row['launches'], error=err,
                             values_ok=err <= tol))
        ok = [r for r in rows if r['values_ok'] and r['launches']]
        best = min(ok, key=lambda r: r['us']) if ok else None
        res['kernels'][kernel] = dict(
            candidates=rows, default=dict(cands[0]),
            best=None if best is None else best['tiles'],
            gain=None if best is None or not best['us'] else round(
                rows[0]['us'] / best['us'], 3))
    res['status'] = 'passed' if all(
        r['values_ok'] and r['launches'] for k in res['kernels'].values()
        for r in k['candidates']) else 'failed'
    return res


def speed(ctx: Context) -> CaseIter:
    shapes = SMOKE_SHAPES if ctx.smoke else SPEED_SHAPES
    for name, spec in shapes.items():
        yield name, lambda spec=spec: speed_case(spec, ctx)
    # last: its candidates compile at their first launch
    name = next(iter(SMOKE_SHAPES)) if ctx.smoke else SWEEP_SHAPE
    yield f'tile_sweep/{name}', lambda: tile_sweep(shapes[name], ctx)
