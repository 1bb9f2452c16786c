"""What the generated data sets (PAD-Textures, PAD-Evidence) share: how a
set is written (PNG folders per split, ``meta.json``, swapped in whole), one
process at a time writes a set (a file lock beside it), and a dataset class
writes its set on first use, on rank 0, before any rank reads it."""
from __future__ import annotations

import json
import os
import os.path as osp
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from PIL import Image

try:
    import fcntl
except ImportError:  # non-POSIX: no lock (one process per data_root)
    fcntl = None

__all__ = ['locked', 'generate_on_first_use', 'write_generated_set',
           'staged', 'split_seeds', 'ensure_generated', 'VAL_SEED_OFFSET']

#: the val split's generator seed is the set's seed plus this
VAL_SEED_OFFSET = 1_000_003


def split_seeds(seed: int, num_train: int,
                num_val: int) -> tuple[tuple[str, int, int], ...]:
    """``(split, count, generator seed)`` of the two splits: ``train`` with
    ``seed``, ``val`` with ``seed +`` :data:`VAL_SEED_OFFSET`."""
    return (('train', num_train, seed),
            ('val', num_val, seed + VAL_SEED_OFFSET))


@contextmanager
def staged(root: str, name: str) -> Iterator[str]:
    """A temporary folder beside ``root`` (``.<name>-*``) to write a set
    in; when the block ends without error it replaces ``root`` (any set
    there is removed), otherwise it is removed. So ``root`` never holds
    half a set."""
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{name}-', dir=parent)
    try:
        yield tmp
        if osp.exists(root):
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if osp.exists(tmp):
            shutil.rmtree(tmp)


def write_generated_set(
        root: str, name: str, folders: Sequence[str],
        sample: Callable[[np.random.Generator], Sequence[np.ndarray]],
        seed: int, num_train: int, num_val: int, meta: dict) -> str:
    """Write the generated set ``name`` under ``root``, replacing any there.

    Splits as :func:`split_seeds`: sample ``i`` of a split is
    ``sample(rng)``, one uint8 array per entry of ``folders``, saved as
    ``<folder>/<split>/<i:06d>.png``. ``meta`` is written to
    ``meta.json``. Written through :func:`staged`.
    """
    with staged(root, name) as tmp:
        for split, count, split_seed in split_seeds(seed, num_train,
                                                    num_val):
            rng = np.random.default_rng(split_seed)
            dirs = [osp.join(tmp, folder, split) for folder in folders]
            for folder in dirs:
                os.makedirs(folder)
            for i in range(count):
                for folder, array in zip(dirs, sample(rng), strict=True):
                    Image.fromarray(array).save(
                        osp.join(folder, f'{i:06d}.png'))
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(meta, f)
    return root


@contextmanager
def locked(root: str) -> Iterator[None]:
    """Hold an exclusive file lock beside ``root`` (``.<name>.lock`` in its
    parent), so processes that share ``root`` (parallel sweep runs) never
    see a set while another one writes it."""
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    lock = osp.join(parent, f'.{osp.basename(osp.abspath(root))}.lock')
    with open(lock, 'a') as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_generated(root: str, version: int, want: dict,
                     make: Callable[..., object]) -> bool:
    """Under :func:`locked`: keep the set under ``root`` if its
    ``meta.json`` has format ``version`` and every item of ``want``;
    otherwise write it with ``make(root, **want)``. Returns True if it was
    (re)generated."""
    with locked(root):
        meta_file = osp.join(root, 'meta.json')
        if osp.isfile(meta_file):
            with open(meta_file) as f:
                meta = json.load(f)
            if meta.get('version') == version and all(
                    meta.get(k) == v for k, v in want.items()):
                return False
        make(root, **want)
        return True


def generate_on_first_use(owner: str, data_root: str | None,
                          generate: dict | None,
                          ensure: Callable[..., bool]) -> None:
    """A dataset class's ``generate`` argument: write the set under
    ``data_root`` with ``ensure(data_root, **generate)`` on rank 0 and wait
    for it on every rank; with ``generate=None`` the set must exist.

    Raises:
        ValueError: ``generate`` without ``data_root``.
        TypeError: ``generate`` is not a dict.
        FileNotFoundError: no ``generate`` and no ``data_root`` folder.
    """
    from mmengine.dist import barrier, get_dist_info
    if generate is not None:
        if not data_root:
            raise ValueError(f'{owner}: generate needs data_root (where to '
                             'write the set)')
        if not isinstance(generate, dict):
            raise TypeError(f'{owner}.generate must be a dict of generator '
                            f'parameters or None, got {generate!r}')
        rank, _ = get_dist_info()
        if rank == 0:
            ensure(data_root, **generate)
        barrier()
    elif data_root and not osp.isdir(data_root):
        raise FileNotFoundError(
            f'{owner}: data_root {data_root!r} does not exist; set '
            'generate=dict(...) to create it')
