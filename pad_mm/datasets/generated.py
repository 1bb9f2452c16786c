"""What the generated data sets (PAD-Textures, PAD-Evidence) share: one
process at a time writes a set (a file lock beside it), and a dataset class
writes its set on first use, on rank 0, before any rank reads it."""
from __future__ import annotations

import os
import os.path as osp
from collections.abc import Callable, Iterator
from contextlib import contextmanager

try:
    import fcntl
except ImportError:  # non-POSIX: no lock (one process per data_root)
    fcntl = None

__all__ = ['locked', 'generate_on_first_use']


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
