"""Section 8 (graphs): a PAD layer captured in a CUDA graph (replayed on
new inputs, against eager) and compiled by ``torch.compile`` (against
eager, with the graph breaks counted)."""
from __future__ import annotations

import dataclasses
import time

import torch
import torch.nn as nn
from torch import Tensor

from .. import pad_conv2d, pad_conv2d_hard
from .cases import DTYPES, CallSpec, rel_err
from .child import CaseIter, Context
from .speed import layer_tensors

__all__ = ['graph_specs', 'graphs', 'cuda_graph_case', 'compile_case',
           'PADLayer']


def graph_specs(smoke: bool) -> list[CallSpec]:
    base = CallSpec(1, 8, 8, (6, 10), 'float32', bias=False) if smoke \
        else CallSpec(2, 256, 256, (32, 64), dil=(2, 4, 8), bias=False)
    return [base, dataclasses.replace(base, mode='hard')]


class PADLayer(nn.Module):
    """A PAD conv with given probs (soft) or index (hard)."""

    def __init__(self, weight: Tensor, dil: tuple[int, ...], impl: str,
                 hard: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.dil, self.impl, self.hard = dil, impl, hard

    def forward(self, x: Tensor, sel: Tensor) -> Tensor:
        fn = pad_conv2d_hard if self.hard else pad_conv2d
        return fn(x, self.weight, None, sel, self.dil, impl=self.impl)


def _tol(spec: CallSpec) -> float:
    return {torch.float32: 1e-4, torch.float16: 5e-3,
            torch.bfloat16: 2e-2}[DTYPES[spec.dtype]]


def _runner(spec: CallSpec, t: dict, layer: nn.Module):
    hard = spec.mode == 'hard'
    x = t['x'].detach().requires_grad_(not hard)
    sel = t['index'] if hard else t['probs'].detach().requires_grad_()

    def run() -> list[Tensor]:
        if hard:
            with torch.no_grad():
                return [layer(x, sel)]
        out = layer(x, sel)
        return [out, *torch.autograd.grad(out, [x, layer.weight, sel],
                                          t['go'])]

    return run, x, sel


def cuda_graph_case(spec: CallSpec, device: torch.device, impl: str
                    ) -> dict:
    """Capture one call (soft: with its backward) after a warm-up on a
    side stream, replay it on new inputs, compare with eager."""
    t = layer_tensors(spec, device)
    layer = PADLayer(t['w'], spec.dil, impl, spec.mode == 'hard')
    run, x, sel = _runner(spec, t, layer)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static = run()
    g = torch.Generator(device=device).manual_seed(1)
    with torch.no_grad():
        x.copy_(torch.randn(x.shape, device=device, generator=g))
        if sel.is_floating_point():
            sel.copy_(torch.softmax(torch.randn(sel.shape, device=device,
                                                generator=g), 1))
    graph.replay()
    torch.cuda.synchronize(device)
    eager = run()
    errors = [rel_err(a.double().cpu(), e.double().cpu())
              for a, e in zip(static, eager)]
    return dict(spec=spec.describe(), impl=impl, errors=errors,
                bitwise=all(torch.equal(a, e) for a, e in zip(static,
                                                             eager)),
                tolerance=_tol(spec), status='passed' if max(errors) <=
                _tol(spec) else 'failed')


def compile_case(spec: CallSpec, device: torch.device, impl: str,
                 backend: str) -> dict:
    """``torch.compile`` of a :class:`PADLayer` (soft: forward and
    backward) against eager; the graph breaks dynamo counted."""
    import torch._dynamo as dynamo
    from torch._dynamo.utils import counters
    dynamo.reset()
    counters.clear()
    t = layer_tensors(spec, device)
    layer = PADLayer(t['w'], spec.dil, impl, spec.mode == 'hard')
    eager_run, _, _ = _runner(spec, t, layer)
    eager = eager_run()
    compiled = torch.compile(layer, backend=backend)
    run, _, _ = _runner(spec, t, compiled)
    tt = time.time()
    got = run()
    first = time.time() - tt
    errors = [rel_err(a.double().cpu(), e.double().cpu())
              for a, e in zip(got, eager)]
    breaks = {str(k)[:200]: v for k, v in counters['graph_break'].items()}
    return dict(spec=spec.describe(), impl=impl, backend=backend,
                first_call_s=round(first, 2), errors=errors,
                tolerance=_tol(spec), graph_breaks=sum(breaks.values()),
                graph_break_reasons=breaks,
                status='passed' if max(errors) <= _tol(spec) else 'failed')


def graphs(ctx: Context) -> CaseIter:
    soft, hard = graph_specs(ctx.smoke)
    cuda = ctx.device.type == 'cuda'
    for impl in ('triton', 'auto'):
        for spec in (soft, hard):
            name = f'cuda_graph/{impl}/{spec.mode}'
            if not cuda:
                yield name, lambda: dict(status='skipped',
                                         reason='needs CUDA')
                continue
            yield name, (lambda spec=spec, impl=impl: cuda_graph_case(
                spec, ctx.device, impl))
    # no C++ toolchain on a CPU runner: aot_eager there, inductor on CUDA
    backend = 'inductor' if cuda else 'aot_eager'
    for impl, spec in (('auto', soft), ('triton', soft), ('auto', hard)):
        name = f'torch_compile/{impl}/{spec.mode}'
        if impl == 'triton' and not cuda:
            # dynamo would trace Triton's interpreter, not a kernel launch
            yield name, lambda: dict(status='skipped', reason='needs CUDA')
            continue
        yield name, (lambda spec=spec, impl=impl: compile_case(
            spec, ctx.device, impl, backend))
