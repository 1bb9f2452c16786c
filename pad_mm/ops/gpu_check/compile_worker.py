"""A compile worker of the warm compile (section 2): records the kernel
launches of the PAD calls it is given (``'meta'`` tensors, nothing runs)
and compiles each distinct one with ``triton.compile`` for the given
CUDA target, which fills Triton's on-disk cache. Runs as
``python -m pad_mm.ops.gpu_check.compile_worker CAP JSON`` (Triton's
interpreter off: compiling needs no GPU) and prints one JSON line per
variant compiled, as soon as it is (a worker killed at its deadline
keeps what it printed)."""
from __future__ import annotations

import json
import sys
import time

import torch

from .. import triton_pad
from .cases import DTYPES, CallSpec, tf32

__all__ = ['call_launches', 'main']


def call_launches(spec: CallSpec, backward: bool = True,
                  cap: int | None = None) -> list:
    """The launches of ``spec``'s call (and its backward, on its
    ``bwd_path`` and chunking), recorded on ``'meta'`` tensors in the
    compute dtype (as the op casts them), with the tiles of compute
    capability ``cap``."""
    cdt = spec.compute_dtype
    fmt = torch.channels_last if spec.layout == 'channels_last' else \
        torch.contiguous_format
    x = torch.empty(spec.n, spec.c_in, *spec.size, device='meta',
                    dtype=cdt).contiguous(memory_format=fmt)
    w = torch.empty(spec.c_out, spec.c_in // spec.groups, spec.k, spec.k,
                    device='meta', dtype=DTYPES[spec.dtype])
    b = torch.empty(spec.c_out, device='meta', dtype=DTYPES[spec.dtype]) \
        if spec.bias else None
    hard = spec.mode == 'hard'
    sel = torch.empty(spec.n, *spec.out_size, device='meta',
                      dtype=torch.long) if hard else \
        torch.empty(spec.n, len(spec.dil), *spec.out_size, device='meta')
    with tf32(spec.tf32), triton_pad.bwd_scope(spec.bwd_path, spec.chunked):
        return triton_pad.record_launches(x, w, b, sel, spec.dil,
                                          spec.stride, spec.groups,
                                          hard=hard, backward=backward,
                                          cap=cap)


def main(argv: list[str] | None = None) -> None:
    import triton
    from triton.backends.compiler import GPUTarget

    from ..kernel_report import launch_options, specialise, variant_key
    argv = sys.argv[1:] if argv is None else argv
    cap, specs = int(argv[0]), json.loads(argv[1])
    seen = set()
    for raw in specs:
        raw['size'], raw['dil'] = tuple(raw['size']), tuple(raw['dil'])
        for launch in call_launches(CallSpec(**raw), cap=cap):
            src = specialise(launch, cap)
            key = variant_key(launch, cap)
            if key in seen:
                continue
            seen.add(key)
            t = time.time()
            triton.compile(src, target=GPUTarget('cuda', cap, 32),
                           options=launch_options(launch))
            print(json.dumps(dict(kernel=launch.kernel.fn.__name__,
                                  variant=key[:12] + key[64:],
                                  seconds=round(time.time() - t, 3))),
                  flush=True)


if __name__ == '__main__':
    main()
