"""Tile sizes of the Triton launches: per kernel, per architecture (no
spills in ``ptxas -v``), small ones in the interpreter, and the small set
a GPU run's tile sweep times to choose them (:data:`TILE_CANDIDATES`,
:func:`tile_override`)."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from .triton_kernels import interpreting

__all__ = ['BLOCKS', 'INTERPRET_BLOCKS', 'SM80_BLOCKS', 'TILE_CANDIDATES',
           'tile_override', 'gpu_blocks', 'blocks']

#: tile sizes per kernel (4 warps): fwd/cols/weight are GEMM tiles
#: (BM x BN, BK deep), input a [pixels, channels] tile, probs a 1-D block
BLOCKS = dict(fwd=dict(BM=64, BN=128, BK=32),
              cols=dict(BM=64, BN=64, BK=32),
              input=dict(BM=64, BN=64),
              input_gemm=dict(BM=64, BN=128, BK=32),
              probs=dict(BLOCK=512),
              weight=dict(BM=128, BN=64, BK=32))
INTERPRET_BLOCKS = dict(fwd=dict(BM=16, BN=16, BK=16),
                        cols=dict(BM=16, BN=16, BK=16),
                        input=dict(BM=16, BN=16),
                        input_gemm=dict(BM=16, BN=16, BK=16),
                        probs=dict(BLOCK=64),
                        weight=dict(BM=16, BN=16, BK=16))


#: per-architecture tiles: on sm_8x (compute capability < 9.0, 64K
#: registers per SM as on sm_90 but another ptxas schedule) the soft
#: forward's and the grad_input GEMM's 64x128 tiles spill (ptxas -v: 20/40
#: and 268/628 bytes at ResNet-101 layer4); 64x64 ones do not
SM80_BLOCKS = dict(fwd=dict(BM=64, BN=64, BK=32),
                   input_gemm=dict(BM=64, BN=64, BK=32))


#: the small set of GEMM tiles (and warps) per kernel that a GPU run's
#: tile sweep times (``gpu_check``'s speed section, :func:`tile_override`);
#: the first of each is the sm_90 default of :data:`BLOCKS`; none spills
#: on sm_90 at ResNet-101 layer4 (``ptxas -v``; the columns kernel's
#: 128x64 and 64x128 did, 152 and 88 bytes). The launches use fixed tiles
#: (the same on every rank, and the ones the self-check ran); the sweep's
#: winners go into :data:`BLOCKS` once a GPU run has shown them
TILE_CANDIDATES = dict(
    fwd=(dict(BM=64, BN=128, BK=32), dict(BM=128, BN=64, BK=32),
         dict(BM=64, BN=64, BK=32),
         dict(BM=128, BN=128, BK=32, num_warps=8)),
    cols=(dict(BM=64, BN=64, BK=32), dict(BM=64, BN=64, BK=64),
          dict(BM=128, BN=32, BK=32),
          dict(BM=128, BN=64, BK=32, num_warps=8)),
    input_gemm=(dict(BM=64, BN=128, BK=32), dict(BM=128, BN=64, BK=32),
                dict(BM=64, BN=64, BK=32),
                dict(BM=128, BN=128, BK=32, num_warps=8)),
    weight=(dict(BM=128, BN=64, BK=32), dict(BM=64, BN=128, BK=32),
            dict(BM=64, BN=64, BK=32),
            dict(BM=128, BN=128, BK=32, num_warps=8)),
)
_OVERRIDE = threading.local()


@contextlib.contextmanager
def tile_override(kernel: str, tiles: dict) -> Iterator[None]:
    """Within the block (this thread), launches of ``kernel`` (a key of
    :data:`BLOCKS`) use ``tiles`` (the same keys as its :data:`BLOCKS`
    entry, powers of two >= 16, and optionally ``num_warps``: 2, 4 or 8,
    a launch option; default 4), also in the interpreter: for the tile
    sweep and its tests."""
    if kernel not in BLOCKS:
        raise ValueError(f'kernel must be one of {sorted(BLOCKS)}, got '
                         f'{kernel!r}')
    sizes = {k: v for k, v in tiles.items() if k != 'num_warps'}
    if set(sizes) != set(BLOCKS[kernel]) or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 16 or
            v & (v - 1) for v in sizes.values()):
        raise ValueError(f'tiles of {kernel!r} must give '
                         f'{sorted(BLOCKS[kernel])}, each a power of two '
                         f'>= 16, got {tiles!r}')
    if tiles.get('num_warps', 4) not in (2, 4, 8):
        raise ValueError(f"tiles' num_warps must be 2, 4 or 8 (default 4),"
                         f" got {tiles['num_warps']!r}")
    stack = getattr(_OVERRIDE, 'stack', None)
    if stack is None:
        stack = _OVERRIDE.stack = []
    stack.append((kernel, dict(tiles)))
    try:
        yield
    finally:
        stack.pop()


def gpu_blocks(cap: int | None = None) -> dict:
    """The GPU tiles per kernel for compute capability ``cap`` (None:
    sm_90's :data:`BLOCKS`; below 90 with :data:`SM80_BLOCKS`)."""
    src = dict(BLOCKS, **(SM80_BLOCKS if cap is not None and cap < 90
                          else {}))
    return {k: dict(v) for k, v in src.items()}


def blocks(cap: int | None = None) -> dict:
    """Tile sizes of the launches per kernel for compute capability
    ``cap`` (``major * 10 + minor``; None: :data:`BLOCKS`, sm_90's; below
    90 with :data:`SM80_BLOCKS`), small ones in the interpreter (which
    runs every program in Python); then any :func:`tile_override` of
    this thread."""
    src = dict(INTERPRET_BLOCKS) if interpreting() else gpu_blocks(cap)
    for kernel, tiles in getattr(_OVERRIDE, 'stack', None) or ():
        src[kernel] = tiles
    return {k: dict(v) for k, v in src.items()}
