"""Section 6 (memory): the peak CUDA memory of one PAD layer's forward +
backward and hard inference, above its inputs, against cuDNN's conv of
the same shape."""
from __future__ import annotations

import dataclasses

from .cases import CallSpec, peak_mib
from .child import CaseIter, Context
from .speed import SPEED_SHAPES, layer_fns, layer_tensors

__all__ = ['MEMORY_SHAPES', 'memory_case', 'memory', 'TARGET']

MEMORY_SHAPES = ('r101_l4_os8_b2/bf16/channels_last',
                 'r101_l4_os8_b8/bf16/channels_last',
                 'r101_l4_os16_b8/bf16/channels_last')
#: issue 27: the layer's peak at most 1.3x cuDNN's
TARGET = 1.3


def memory_case(spec: CallSpec, ctx: Context) -> dict:
    t = layer_tensors(spec, ctx.device)
    fns = layer_fns(t, spec)
    res: dict = dict(spec=spec.describe())
    for m in ('fwd_bwd', 'hard_inference'):
        fns[m]['auto']()  # its self-check and timing are not the layer's
        peaks = {i: peak_mib(ctx.device, f) for i, f in fns[m].items()}
        base = peaks['cudnn']
        res[m] = dict(peak_mib=peaks, ratio_to_cudnn={
            i: (v / base if v is not None and base else None)
            for i, v in peaks.items() if i != 'cudnn'})
    ratios = res['fwd_bwd']['ratio_to_cudnn']
    # the default backward and its GEMM path (no buffer)
    res['target'] = {f'fwd_bwd peak <= {TARGET}x cuDNN ({i})':
                     None if ratios[i] is None else ratios[i] <= TARGET
                     for i in ('triton', 'triton_gemm')}
    if ratios['triton'] is None:
        res['note'] = 'no CUDA allocator statistics (CPU): not measured'
    return res


def memory(ctx: Context) -> CaseIter:
    if ctx.smoke:
        shapes = {'tiny/bf16/channels_last': CallSpec(1, 8, 8, (6, 10),
                                                      bias=False)}
    else:
        shapes = {n: SPEED_SHAPES[n] for n in MEMORY_SHAPES}
    for name, spec in shapes.items():
        yield name, (lambda spec=spec: memory_case(
            dataclasses.replace(spec), ctx))
