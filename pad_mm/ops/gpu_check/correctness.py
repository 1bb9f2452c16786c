"""Sections 3 (quick correctness) and 7 (the full correctness matrix):
Triton against the float64 reference on the same rounded inputs, with
uninitialised memory NaN (an output element never written fails)."""
from __future__ import annotations

import dataclasses

import torch

from .. import pad_conv2d, pad_conv2d_hard, select_impl, triton_pad
from .cases import CallSpec, check_call, rel_err
from .child import CaseIter, Context

__all__ = ['quick_specs', 'quick_correctness', 'matrix_specs',
           'correctness_matrix', 'int32_edge']

_DT = ('float32', 'float16', 'bfloat16')
#: the kernels each family's forward + backward runs
KERNELS = {'soft': ['fwd_kernel (soft)', 'bwd_cols_kernel',
                    'bwd_input_kernel', 'bwd_probs_kernel',
                    'bwd_weight_kernel'],
           'hard': ['fwd_kernel (hard)', 'bwd_cols_kernel',
                    'bwd_input_kernel', 'bwd_weight_kernel'],
           'soft/gemm': ['fwd_kernel (soft)', 'bwd_cols_kernel',
                         'bwd_probs_kernel', 'bwd_input_gemm_kernel',
                         'bwd_weight_kernel']}


def _base(smoke: bool) -> CallSpec:
    # 80 -> 96 channels, 13 x 17: across the 64-wide tiles, ragged
    return CallSpec(2, 5, 7, (7, 6)) if smoke else CallSpec(2, 80, 96,
                                                            (13, 17))


def quick_specs(smoke: bool) -> list[CallSpec]:
    """Soft and hard in each dtype (--smoke: soft fp32 and bf16, hard
    fp16; the matrix has the others)."""
    base = _base(smoke)
    pairs = [(m, dt) for m in ('soft', 'hard') for dt in _DT]
    if smoke:
        pairs = [('soft', 'float32'), ('soft', 'bfloat16'),
                 ('hard', 'float16')]
    specs = [dataclasses.replace(base, dtype=dt, mode=m) for m, dt in pairs]
    # the backward's GEMM path for grad_input (no buffer)
    return specs + [dataclasses.replace(base, bwd_path='gemm')]


def _family(spec: CallSpec) -> str:
    return spec.mode + ('/gemm' if spec.bwd_path == 'gemm' else '')


def quick_correctness(ctx: Context) -> CaseIter:
    """One case per kernel family (soft, hard: every kernel, forward and
    backward) and dtype, channels_last, run twice on CUDA (bitwise
    determinism; the interpreter is deterministic)."""
    for spec in quick_specs(ctx.smoke):
        name = f'{spec.mode}/{spec.dtype}' + (
            '/gemm_backward' if spec.bwd_path == 'gemm' else '')
        yield name, (lambda spec=spec: dict(
            check_call(spec, ctx.device, repeat=not ctx.smoke,
                       chunk_context=_backward_context(spec)),
            kernels=KERNELS[_family(spec)]))


def _matrix(smoke: bool) -> dict[str, CallSpec]:
    b = _base(smoke)
    r = dataclasses.replace
    cases: dict[str, CallSpec] = {}
    combos = [(dt, m, lay) for dt in _DT
              for m in ('soft', 'straight_through', 'hard')
              for lay in ('nchw', 'channels_last')]
    if smoke:  # each value of each axis once
        combos = [('float32', 'soft', 'channels_last'),
                  ('bfloat16', 'straight_through', 'nchw'),
                  ('float16', 'hard', 'channels_last')]
    for dt, m, lay in combos:
        cases[f'ragged/{dt}/{m}/{lay}'] = r(b, dtype=dt, mode=m, layout=lay)
    al = CallSpec(1, 16, 16, (8, 16)) if smoke else CallSpec(2, 64, 64,
                                                             (16, 32))
    cases['aligned16/bfloat16/soft'] = al
    cases['aligned16/bfloat16/hard'] = r(al, mode='hard')
    cases['aligned16/float32/soft/nchw'] = r(al, dtype='float32',
                                             layout='nchw')
    f32 = r(b, dtype='float32')
    cases['tf32_via_conv_fp32_precision'] = r(f32, tf32='conv')
    cases['tf32_via_allow_tf32'] = r(f32, tf32='legacy')
    for ac in ('bfloat16', 'float16'):
        for m in ('soft', 'hard'):
            cases[f'amp_{ac}_fp32_weights/{m}'] = r(f32, autocast=ac, mode=m)
    cases['stride2/bfloat16/soft'] = r(b, stride=2)
    cases['stride2/float32/hard'] = r(f32, stride=2, mode='hard')
    cases['stride2/float32/straight_through/nchw'] = r(
        f32, stride=2, mode='straight_through', layout='nchw')
    g = CallSpec(2, 8, 8, (7, 6), groups=4) if smoke else CallSpec(
        2, 96, 64, (13, 17), groups=4)
    cases['groups4/bfloat16/soft'] = g
    dw = CallSpec(2, 6, 6, (6, 7), 'float32', groups=6, stride=2) if smoke \
        else CallSpec(2, 64, 64, (13, 17), 'float32', groups=64, stride=2)
    cases['depthwise_s2/float32/soft'] = dw
    cases['D2/bfloat16/soft'] = r(b, dil=(1, 2))
    cases['D4/bfloat16/soft'] = r(b, dil=(1, 2, 4, 8))
    cases['D4/float32/hard'] = r(f32, dil=(1, 2, 4, 8), mode='hard')
    cases['k5/bfloat16/soft'] = r(b, k=5)
    cases['k5/float32/hard'] = r(f32, k=5, mode='hard')
    cases['multi_chunk/bfloat16/soft'] = r(b, chunked=True,
                                           bwd_path='buffer')
    cases['multi_chunk/float32/straight_through/nchw'] = r(
        f32, chunked=True, mode='straight_through', layout='nchw',
        bwd_path='buffer')
    # grad_input by the GEMM path (no buffer)
    cases['gemm_backward/bfloat16/soft'] = r(b, bwd_path='gemm')
    cases['gemm_backward/float32/stride2/nchw'] = r(
        f32, stride=2, layout='nchw', bwd_path='gemm')
    cases['gemm_backward/bfloat16/groups4'] = r(g, bwd_path='gemm')
    cases['gemm_backward/float32/k5/D4/hard'] = r(
        f32, k=5, dil=(1, 2, 4, 8), mode='hard', bwd_path='gemm')
    cases['sliced/float32/soft'] = r(f32, layout='sliced')
    cases['sliced/bfloat16/hard'] = r(b, layout='sliced', mode='hard')
    cases['no_bias/bfloat16/soft'] = r(b, bias=False)
    cases['N0/bfloat16/soft'] = r(b, n=0)
    cases['N0/float32/hard'] = r(f32, n=0, mode='hard')
    return cases


#: the matrix in --smoke (each costs seconds in the interpreter): the axes
#: that change what is launched or how it is called
SMOKE_MATRIX = ('ragged/float32/soft/channels_last',
                'ragged/bfloat16/straight_through/nchw',
                'ragged/float16/hard/channels_last',
                'tf32_via_allow_tf32', 'amp_bfloat16_fp32_weights/soft',
                'stride2/float32/hard', 'groups4/bfloat16/soft',
                'D4/bfloat16/soft', 'k5/float32/hard',
                'multi_chunk/bfloat16/soft',
                'gemm_backward/float32/stride2/nchw', 'sliced/float32/soft',
                'N0/bfloat16/soft')


def matrix_specs(smoke: bool) -> list[CallSpec]:
    return [s for n, s in _matrix(smoke).items()
            if not smoke or n in SMOKE_MATRIX]


def _backward_context(spec: CallSpec):
    """The context of ``spec``'s backward path and chunking (None: the
    defaults)."""
    if not spec.chunked and spec.bwd_path == 'auto':
        return None
    return lambda: triton_pad.bwd_scope(spec.bwd_path, spec.chunked)


def correctness_matrix(ctx: Context) -> CaseIter:
    """Every axis of the matrix (see :func:`_matrix`), then the int32
    edge."""
    for name, spec in _matrix(ctx.smoke).items():
        if ctx.smoke and name not in SMOKE_MATRIX:
            continue
        yield name, (lambda spec=spec: check_call(
            spec, ctx.device, chunk_context=_backward_context(spec)))
    yield 'int32_edge/beyond', lambda: int32_edge(ctx.device, beyond=True)
    if ctx.device.type == 'cuda':
        yield 'int32_edge/below', lambda: int32_edge(ctx.device,
                                                     beyond=False)


def int32_edge(device: torch.device, beyond: bool) -> dict:
    """``beyond``: an input of 2**31 elements (an expanded tensor, no
    memory) is declined by Triton (``supports`` False, forced Triton
    raises a ValueError, ``auto`` does not pick it). Else (CUDA): an
    input 131072 elements below 2**31, forward soft and hard, the last
    rows (the largest offsets) against the reference on a crop."""
    dil = (1, 2, 4)
    h, w = 8192, 16384 if beyond else 16383
    shape = (1, 16, h, w)
    wt = torch.randn(16, 16, 3, 3, device=device) * 0.08
    if beyond:
        x = torch.zeros((), device=device).expand(shape)
        p = torch.full((), 1 / 3, device=device).expand(1, 3, h, w)
        ok = triton_pad.supports(x, wt, p, dil, 1, 1)
        try:
            pad_conv2d(x, wt, None, p, dil, impl='triton')
            raised = None
        except ValueError as err:
            raised = str(err)
        auto = select_impl(x, wt, p, dil, 1, 1)
        return dict(numel=x.numel(), supports=ok, forced_error=raised,
                    auto_choice=auto,
                    status='passed' if not ok and raised and 'triton' in
                    raised and auto != 'triton' else 'failed')
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(shape, device=device, generator=g,
                    dtype=torch.bfloat16)
    p = torch.softmax(torch.randn(1, 3, h, w, device=device, generator=g),
                      1)
    wt = wt.to(torch.bfloat16)
    rows, halo = 8, 4
    errors = {}
    with torch.no_grad():
        for hard in (False, True):
            sel = p.argmax(1) if hard else p
            fn = pad_conv2d_hard if hard else pad_conv2d
            out = fn(x, wt, None, sel, dil, impl='triton')[..., -rows:, :]
            crop = (x[..., -rows - halo:, :].float(), wt.float(), None,
                    sel[..., -rows - halo:, :], dil)
            ref = fn(*crop, impl='reference')[..., -rows:, :]
            errors['hard' if hard else 'soft'] = rel_err(
                out.double().cpu(), ref.double().cpu())
            del out
    return dict(numel=x.numel(), errors=errors, tolerance=1e-2,
                status='passed' if all(e <= 1e-2 for e in errors.values())
                else 'failed')
