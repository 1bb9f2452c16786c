"""Compiled CPU helpers of the hard path: gather and write-back in one pass.

The CPU hard path (:mod:`.hard_im2col`) gathers each recomputed pixel's
k x k taps into a row ``[k*k*C_in]`` and writes each result row back into
the NCHW output. In torch ops that is a transpose of the whole input to
channels-last rows (one thread), then a gather; and a transpose of the
results, then a scatter per image. ``csrc/hard_gather.c`` does each in
one pass over OpenMP threads, straight from and into NCHW.

The C file is compiled on first use with the system C compiler (``$CC``,
else ``cc``; ``-O3 -fopenmp``, about a second) into a cache folder
(``$PAD_MM_CACHE_DIR``, else ``$XDG_CACHE_HOME/pad_mm``, else
``~/.cache/pad_mm``; the file name carries a hash of the source, the
compiler and the flags, so an edit rebuilds), loaded with ``ctypes`` and
checked against torch ops on ragged cases (:func:`available`). Only
after that check passed in this process does the hard path use it; if
there is no compiler, the build or the check fails, or
``PAD_MM_NATIVE=0``, it runs the torch-op version (same results) and
:func:`status` says why.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..shapes import conv_out_size

__all__ = [
    'available', 'status', 'disabled', 'reset', 'gather_taps', 'scatter_rows'
]

SOURCE = Path(__file__).parent.parent / 'csrc' / 'hard_gather.c'
FLAGS = ('-O3', '-fPIC', '-shared', '-fopenmp')
_ABI = 1

_LOCK = threading.Lock()
_STATE: dict = {}  # 'lib': the checked library or None, 'why': status
_OFF: list[bool] = []  # open disabled() blocks


def cache_dir() -> Path:
    """Where the compiled library is kept (see the module docstring)."""
    env = os.environ.get('PAD_MM_CACHE_DIR')
    if env:
        return Path(env)
    xdg = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(xdg) / 'pad_mm'


def _compiler() -> str:
    cc = os.environ.get('CC') or shutil.which('cc') or shutil.which('gcc')
    if not cc:
        raise RuntimeError('no C compiler found (set CC)')
    return cc


def _build() -> Path:
    """The compiled library's path, compiling it if it is not cached."""
    cc = _compiler()
    src = SOURCE.read_bytes()
    version = subprocess.run([cc, '--version'], capture_output=True,
                             timeout=60).stdout
    key = hashlib.sha256(b'\0'.join(
        [src, cc.encode(), version, ' '.join(FLAGS).encode(),
         platform.machine().encode()])).hexdigest()[:16]
    out_dir = cache_dir()
    lib = out_dir / f'hard_gather-{key}.so'
    if lib.is_file():
        return lib
    out_dir.mkdir(parents=True, exist_ok=True)
    # build next to the target and rename: concurrent processes (DDP
    # ranks, test workers) never load a half-written file
    fd, tmp = tempfile.mkstemp(suffix='.so', dir=out_dir)
    os.close(fd)
    try:
        proc = subprocess.run([cc, *FLAGS, str(SOURCE), '-o', tmp],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode:
            raise RuntimeError(f'{cc} failed: {proc.stderr.strip()[-500:]}')
        os.replace(tmp, lib)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return lib


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    if lib.pad_hard_gather_abi() != _ABI:
        raise RuntimeError(f'{path.name}: calling convention '
                           f'{lib.pad_hard_gather_abi()}, expected {_ABI}')
    i64, ptr, c_int = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    lib.pad_gather_taps.argtypes = [ptr, i64, i64, i64, ptr, ptr, i64, i64,
                                    i64, i64, i64, ptr, c_int]
    lib.pad_gather_taps.restype = None
    lib.pad_scatter_rows.argtypes = [ptr, ptr, i64, i64, i64, ptr, c_int]
    lib.pad_scatter_rows.restype = None
    return lib


def _reference_taps(x: Tensor, pix: Tensor, dil: Tensor, h_out: int,
                    w_out: int, k: int, stride: int) -> Tensor:
    """torch ops version of :func:`gather_taps` (for the check)."""
    n, c, h, w = x.shape
    r = (k - 1) // 2
    pad = r * int(dil.max())
    xp = F.pad(x, (pad, pad, pad, pad)).permute(0, 2, 3, 1)
    b, p = pix // (h_out * w_out), pix % (h_out * w_out)
    off = torch.arange(k) - r
    hh = (p // w_out * stride).view(-1, 1, 1) + \
        dil.view(-1, 1, 1) * off.view(1, k, 1)
    ww = (p % w_out * stride).view(-1, 1, 1) + \
        dil.view(-1, 1, 1) * off.view(1, 1, k)
    return xp[b.view(-1, 1, 1), hh + pad, ww + pad].reshape(-1, k * k * c)


def _check(lib: ctypes.CDLL) -> str | None:
    """Compare both functions with torch ops on ragged cases (channels not
    a multiple of the blocks, taps outside the plane, strides 1 and 2,
    k = 1, 3, 5, pixels in no order, several threads); None if equal, else
    what differed."""
    g = torch.Generator().manual_seed(0)
    for n, c, h, w, k, s in [(2, 37, 9, 11, 3, 1), (3, 70, 12, 7, 5, 2),
                             (1, 5, 6, 6, 1, 1), (2, 33, 17, 19, 3, 2)]:
        x = torch.randn(n, c, h, w, generator=g)
        h_out, w_out = conv_out_size(h, k, s), conv_out_size(w, k, s)
        total = n * h_out * w_out
        pix = torch.randperm(total, generator=g)[:max(1, total * 2 // 3)]
        dil = torch.tensor([1, 2, 5])[torch.randint(0, 3, pix.shape,
                                                    generator=g)]
        for nt in (1, 3):
            got = torch.full((pix.numel(), k * k * c), float('nan'))
            _gather(lib, x, pix, dil, h_out, w_out, k, s, got, nt)
            if not torch.equal(got, _reference_taps(x, pix, dil, h_out,
                                                    w_out, k, s)):
                return f'gather differs at n,c,h,w,k,s={n, c, h, w, k, s}'
            rows = torch.randn(pix.numel(), c + 3, generator=g)
            out = torch.randn(n, c + 3, h_out * w_out, generator=g)
            exp = out.clone()
            exp.permute(0, 2, 1)[pix // (h_out * w_out),
                                 pix % (h_out * w_out)] = rows
            _scatter(lib, rows, pix, out, nt)
            if not torch.equal(out, exp):
                return (f'write-back differs at n,c,P='
                        f'{n, c + 3, h_out * w_out}')
    return None


def available() -> bool:
    """Whether the hard path uses the compiled helpers: built (or found in
    the cache), loaded and checked against torch ops in this process
    (once; the first call takes about a second when it compiles). A
    failure warns once and is kept in :func:`status`. False inside
    :func:`disabled`."""
    if _OFF:
        return False
    if 'lib' not in _STATE:
        with _LOCK:
            if 'lib' not in _STATE:
                _STATE.update(_init())
    return _STATE['lib'] is not None


def _init() -> dict:
    if os.environ.get('PAD_MM_NATIVE', '1') == '0':
        return dict(lib=None, why='disabled by PAD_MM_NATIVE=0')
    try:
        lib = _load(_build())
        diff = _check(lib)
    except Exception as e:  # no compiler, a failed build or load
        lib, diff = None, f'{type(e).__name__}: {e}'
    if diff is not None:
        warnings.warn(
            f'pad_mm: the compiled CPU gather of the hard path is not used '
            f'({diff}); the hard path runs its torch-op version (same '
            'results, slower). PAD_MM_NATIVE=0 skips the attempt.',
            RuntimeWarning, stacklevel=3)
        return dict(lib=None, why=f'not used: {diff}')
    return dict(lib=lib, why='in use (built and checked in this process)')


def reset() -> None:
    """Forget the build, load and check of this process (as a new process
    starts): the next :func:`available` builds or loads and checks again
    (tests; after changing ``PAD_MM_NATIVE`` or ``PAD_MM_CACHE_DIR``)."""
    with _LOCK:
        _STATE.clear()


def status() -> str:
    """Why the compiled helpers are or are not in use (runs the check)."""
    if _OFF:
        return 'disabled in this block (native.disabled())'
    available()
    return _STATE['why']


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within the block the hard path runs the torch-op version (same
    results): to time one against the other, or to rule the compiled
    helpers out. Not thread-safe (a process-wide switch)."""
    _OFF.append(True)
    try:
        yield
    finally:
        _OFF.pop()


def _lib() -> ctypes.CDLL:
    if not available():
        raise RuntimeError('the compiled hard-path helpers are not '
                           f'available: {status()}')
    return _STATE['lib']


def _ptr(t: Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


def _gather(lib, x, pix, dil, h_out, w_out, k, stride, out, nt) -> None:
    n, c, h, w = x.shape
    lib.pad_gather_taps(_ptr(x), c, h, w, _ptr(pix), _ptr(dil), pix.numel(),
                        h_out, w_out, k, stride, _ptr(out), nt)


def _scatter(lib, rows, pix, out, nt) -> None:
    lib.pad_scatter_rows(_ptr(rows), _ptr(pix), pix.numel(), rows.shape[1],
                         out.shape[-1], _ptr(out), nt)


def _describe(t: Tensor) -> str:
    return (f'{list(t.shape)} {t.dtype} on {t.device.type}'
            f'{"" if t.is_contiguous() else " (not contiguous)"}')


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise ValueError(what)


def gather_taps(x: Tensor, pix: Tensor, dil: Tensor, h_out: int,
                w_out: int, k: int, stride: int, out: Tensor) -> Tensor:
    """Write the k x k taps of output pixels ``pix`` into ``out``.

    Args:
        x: [N, C, H, W] float32, contiguous (NCHW), on the CPU.
        pix: [M] int64, flat output pixels ``n*H_out*W_out + row*W_out +
            col``, each in ``[0, N*H_out*W_out)``.
        dil: [M] int64, each pixel's dilation (>= 1).
        h_out, w_out: output size; k: odd kernel size; stride: >= 1.
        out: [M, k*k*C] float32, contiguous: row m holds pixel m's taps in
            (kernel row, kernel column, channel) order, zero outside the
            input (the layout of :func:`.taps.tap_rows_index`).

    Returns ``out``. RuntimeError where not :func:`available`.
    """
    n, c, h, w = x.shape
    m = pix.numel()
    _require(x.dtype == out.dtype == torch.float32 and x.is_contiguous()
             and out.is_contiguous() and x.device.type == 'cpu',
             'x and out must be contiguous float32 CPU tensors, got x '
             f'{_describe(x)}, out {_describe(out)}')
    _require(pix.dtype == dil.dtype == torch.int64 and pix.is_contiguous()
             and dil.is_contiguous() and dil.shape == pix.shape == (m, ),
             'pix and dil must be contiguous int64 [M] tensors, got pix '
             f'{_describe(pix)}, dil {_describe(dil)}')
    _require(k % 2 == 1 and stride >= 1
             and h_out == conv_out_size(h, k, stride)
             and w_out == conv_out_size(w, k, stride),
             f'k={k}, stride={stride}, output {h_out}x{w_out} do not fit '
             f'an input of {h}x{w}')
    _require(tuple(out.shape) == (m, k * k * c),
             f'out must be [M, k*k*C]={[m, k * k * c]}, got '
             f'{list(out.shape)}')
    if m:
        lo, hi = (int(v) for v in torch.aminmax(pix))
        _require(0 <= lo and hi < n * h_out * w_out,
                 f'pix values must be in [0, {n * h_out * w_out}), got '
                 f'[{lo}, {hi}]')
        _require(int(dil.min()) >= 1, 'dil values must be >= 1')
        _gather(_lib(), x, pix, dil, h_out, w_out, k, stride, out,
                torch.get_num_threads())
    return out


def scatter_rows(rows: Tensor, pix: Tensor, out: Tensor) -> Tensor:
    """``out[n, :, p] = rows[m]`` for ``pix[m] = n*P + p``.

    Args:
        rows: [M, C] float32, contiguous; pix: [M] int64, contiguous, each
            in ``[0, N*P)``; out: [N, C, P] float32, contiguous (an NCHW
            output viewed with P = H_out*W_out), written in place.

    Returns ``out``. RuntimeError where not :func:`available`.
    """
    m = pix.numel()
    _require(rows.dtype == out.dtype == torch.float32 and
             rows.is_contiguous() and out.is_contiguous() and
             out.dim() == 3 and rows.shape == (m, out.shape[1]),
             'rows [M, C] and out [N, C, P] must be contiguous float32 (M = '
             f'pix.numel() = {m}), got rows {_describe(rows)}, out '
             f'{_describe(out)}')
    _require(pix.dtype == torch.int64 and pix.is_contiguous(),
             f'pix must be a contiguous int64 [M] tensor, got '
             f'{_describe(pix)}')
    if m:
        lo, hi = (int(v) for v in torch.aminmax(pix))
        _require(0 <= lo and hi < out.shape[0] * out.shape[2],
                 f'pix values must be in [0, {out.shape[0] * out.shape[2]}),'
                 f' got [{lo}, {hi}]')
        _scatter(_lib(), rows, pix, out, torch.get_num_threads())
    return out
