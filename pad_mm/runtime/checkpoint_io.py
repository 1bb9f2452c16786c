"""Crash-safe checkpoint files: atomic writes with a sha256 beside them,
the check that a checkpoint can be resumed from, and the choice of the
checkpoint an auto-resume takes. No patching here: the workarounds that use
these (mmengine's saving, ``max_keep_ckpts`` and resume) are in
:mod:`pad_mm.runtime.checkpoint`.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import os.path as osp
import re
import tempfile
from collections.abc import Callable
from contextlib import suppress
from typing import IO

import torch

__all__ = [
    'CheckpointError', 'CheckpointWriteError', 'atomic_write',
    'atomic_write_text', 'checksum_path', 'write_error',
    'save_checkpoint_atomic', 'verify_checkpoint', 'model_shapes',
    'read_last_checkpoint', 'resume_candidates', 'select_resume_checkpoint',
    'remove_unfinished_writes', 'decide_on_rank0', 'CHECKSUM_SUFFIX',
    'REQUIRED_KEYS'
]

CHECKSUM_SUFFIX = '.sha256'
# what Runner.resume reads from a checkpoint
REQUIRED_KEYS = ('meta', 'state_dict', 'optimizer', 'message_hub')
_CKPT_NAME = re.compile(r'^(iter|epoch)_(\d+)\.pth$')
# temporary files of atomic_write: '.<name>.<8 random chars>.tmp'
_TMP_NAME = re.compile(r'^\.(.+)\.[A-Za-z0-9_]{8}\.tmp$')
_CHUNK = 1 << 20



class CheckpointError(Exception):
    """A checkpoint cannot be written or resumed from (one-line message)."""


class CheckpointWriteError(CheckpointError, OSError):
    """Writing a checkpoint failed; nothing already on disk was changed."""


# ------------------------------------------------------------ atomic write
class _HashingWriter:
    """File proxy that hashes and counts what is written through it."""

    def __init__(self, raw: IO[bytes], name: str) -> None:
        self.raw = raw
        self.name = name
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(memoryview(data).cast('B'))
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def _fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op elsewhere)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> str:
    """Write a file so that ``path`` holds either its old content or the
    complete new one, never a part.

    ``write(f)`` writes the content to ``f`` (a binary file object), which
    is a temporary file in the same directory as ``path``; it is flushed,
    fsynced and moved into place with ``os.replace``. On any error (or
    ``KeyboardInterrupt``) the temporary file is removed and the error
    re-raised; ``path`` is untouched. Returns the sha256 (hex) of what was
    written.
    """
    path = os.fspath(path)
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix=f'.{osp.basename(path)}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as raw:
            writer = _HashingWriter(raw, tmp)
            write(writer)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)
    return writer.sha256.hexdigest()


def atomic_write_text(path: str, text: str) -> str:
    """:func:`atomic_write` of a UTF-8 text."""
    data = text.encode('utf-8')
    return atomic_write(path, lambda f: f.write(data))


def checksum_path(path: str) -> str:
    return path + CHECKSUM_SUFFIX


def _remove_orphan_checksums(directory: str) -> None:
    """Drop ``X.pth.sha256`` files whose ``X.pth`` is gone (e.g. an old
    best checkpoint that mmengine removed)."""
    with suppress(OSError):
        for name in os.listdir(directory):
            if name.endswith('.pth' + CHECKSUM_SUFFIX) and not osp.exists(
                    osp.join(directory, name[:-len(CHECKSUM_SUFFIX)])):
                with suppress(OSError):
                    os.unlink(osp.join(directory, name))


def write_error(exc: OSError, what: str,
                 unchanged: str) -> CheckpointWriteError:
    reason = exc.strerror or str(exc)
    if exc.errno is not None:
        reason = f'[Errno {exc.errno}] {reason}'
    hint = ' (disk full: free space, then resume with --resume)' \
        if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ''
    error = CheckpointWriteError(
        f'{what}: {reason}{hint}; nothing was replaced: {unchanged}')
    error.errno = exc.errno
    return error


def save_checkpoint_atomic(checkpoint: dict, filename: str) -> None:
    """``torch.save(checkpoint)`` to a local ``filename`` atomically, then
    its sha256 to ``filename + '.sha256'`` (atomically too).

    Raises:
        CheckpointWriteError: the write failed (disk full, permissions...);
            ``filename`` and everything else on disk are as before.
    """
    filename = os.fspath(filename)
    checksum = checksum_path(filename)
    try:
        # a checksum of an older file must never describe the new one
        if osp.exists(checksum):
            os.unlink(checksum)
        digest = atomic_write(filename, lambda f: torch.save(checkpoint, f))
        atomic_write_text(checksum, f'{digest}  {osp.basename(filename)}\n')
    except CheckpointWriteError:
        raise
    except OSError as exc:
        raise write_error(exc, f'could not save checkpoint {filename}',
                           'the previous checkpoint and last_checkpoint '
                           'are unchanged') from exc
    _remove_orphan_checksums(osp.dirname(osp.abspath(filename)))


# ----------------------------------------------------------- verification
def _first_line(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()
    line = text[0].strip() if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit - 3] + '...'


def _sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def model_shapes(model) -> dict[str, tuple[int, ...]]:
    from mmengine.model import is_model_wrapper
    if is_model_wrapper(model):
        model = model.module
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def verify_checkpoint(path: str,
                      model_shapes: dict[str, tuple[int, ...]] | None = None,
                      required: tuple[str, ...] = REQUIRED_KEYS) -> None:
    """Check that ``path`` is a whole training checkpoint one can resume
    from.

    Args:
        path: the ``.pth`` file.
        model_shapes: ``{state-dict key: shape}`` of the model to resume;
            when given, every tensor the checkpoint shares with the model
            must have the model's shape, and they must share keys.
        required: top-level keys the checkpoint must hold.

    Raises:
        CheckpointError: one line: what is wrong with the file.
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise CheckpointError('no such file')
    size = osp.getsize(path)
    if size == 0:
        raise CheckpointError('empty file (0 bytes): a torn write')
    with open(path, 'rb') as f:
        head = f.read(4)
    is_zip = head == b'PK\x03\x04'
    if not is_zip and not head.startswith(b'\x80'):
        raise CheckpointError(
            f'not a PyTorch checkpoint ({size} bytes starting with '
            f'{head!r}, neither a zip archive nor a pickle)')
    try:
        # mmap: tensors are not read, only the structure is unpickled
        checkpoint = torch.load(path, map_location='cpu', weights_only=False,
                                mmap=is_zip)
    except Exception as exc:  # noqa: BLE001  (any reader failure)
        raise CheckpointError(
            f'unreadable, truncated or corrupt ({size} bytes; torch.load: '
            f'{_first_line(exc)})') from None
    try:
        if not isinstance(checkpoint, dict):
            raise CheckpointError(
                f'holds a {type(checkpoint).__name__}, not a checkpoint dict')
        missing = [k for k in required if k not in checkpoint]
        if missing:
            raise CheckpointError(
                f'no {", ".join(repr(k) for k in missing)} (a weights-only '
                'file? resuming needs a training checkpoint written by the '
                'runner; use load_from to start from weights)')
        meta = checkpoint.get('meta')
        if 'meta' in required and (not isinstance(meta, dict) or any(
                k not in meta for k in ('epoch', 'iter'))):
            raise CheckpointError("'meta' lacks 'epoch'/'iter'")
        state = checkpoint.get('state_dict')
        if not isinstance(state, dict):
            raise CheckpointError(
                f"'state_dict' is a {type(state).__name__}, not a dict")
        if model_shapes is not None:
            _check_shapes(state, model_shapes)
    finally:
        del checkpoint
    checksum = checksum_path(path)
    if osp.isfile(checksum):
        with open(checksum, encoding='utf-8', errors='replace') as f:
            recorded = f.read().split()
        if not recorded or _sha256_of(path) != recorded[0].lower():
            raise CheckpointError(
                f'content differs from the sha256 recorded in '
                f'{osp.basename(checksum)} (changed or damaged after it '
                'was written)')


def _check_shapes(state: dict, model_shapes: dict) -> None:
    revised = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
    common = [k for k in model_shapes if k in revised]
    if not common:
        raise CheckpointError(
            f'its state_dict shares no key with the model ({len(revised)} '
            'keys, none of the model\'s): a checkpoint of another model')
    wrong = [(k, tuple(getattr(revised[k], 'shape', ())), model_shapes[k])
             for k in common
             if tuple(getattr(revised[k], 'shape', ())) != model_shapes[k]]
    if wrong:
        key, got, want = wrong[0]
        raise CheckpointError(
            f'its state_dict does not fit the model: {len(wrong)} '
            f'tensor(s) differ in shape, first {key}: {got} in the '
            f'checkpoint, {want} in the model (a checkpoint of another '
            'config?)')


# --------------------------------------------------------- resume choice
def read_last_checkpoint(work_dir: str) -> str | None:
    save_file = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(save_file):
        return None
    with open(save_file, encoding='utf-8', errors='replace') as f:
        last = f.read().strip()
    return last or None


def resume_candidates(work_dir: str) -> list[str]:
    """Checkpoints to resume from, best first: the one ``last_checkpoint``
    names, then the ``iter_N.pth`` / ``epoch_N.pth`` files of its directory
    and of ``work_dir``, newest (largest N) first."""
    last = read_last_checkpoint(work_dir)
    dirs = [work_dir]
    if last is not None and osp.dirname(last):
        dirs.append(osp.dirname(last))
    found: dict[str, tuple[int, float, str]] = {}
    for directory in dirs:
        with suppress(OSError):
            for name in os.listdir(directory):
                m = _CKPT_NAME.match(name)
                if not m:
                    continue
                path = osp.join(directory, name)
                with suppress(OSError):
                    found.setdefault(
                        osp.realpath(path),
                        (int(m.group(2)), osp.getmtime(path), path))
    ordered = [p for _, _, p in sorted(found.values(), reverse=True)]
    if last is not None:
        real = osp.realpath(last)
        ordered = [last] + [p for p in ordered if osp.realpath(p) != real]
    return ordered


def remove_unfinished_writes(directory: str) -> list[str]:
    """Remove the temporary files of writes that were killed (``.X.??.tmp``
    next to checkpoints, checksums and ``last_checkpoint``); returns their
    names."""
    removed = []
    with suppress(OSError):
        for name in sorted(os.listdir(directory)):
            m = _TMP_NAME.match(name)
            if m and (m.group(1).endswith('.pth')
                      or m.group(1).endswith('.pth' + CHECKSUM_SUFFIX)
                      or m.group(1) == 'last_checkpoint'):
                with suppress(OSError):
                    os.unlink(osp.join(directory, name))
                    removed.append(name)
    return removed


def select_resume_checkpoint(work_dir: str, model=None,
                             logger: logging.Logger | str = 'current'
                             ) -> str | None:
    """The checkpoint an auto-resume in ``work_dir`` should load.

    Candidates are tried in the order of :func:`resume_candidates`; each
    unusable one is logged in one line (naming it, the reason and the
    checkpoint used instead). Returns ``None`` when the work dir has no
    checkpoint at all (a fresh start).

    Raises:
        CheckpointError: there are checkpoints but none is valid; the
            message lists each file tried and why it was refused.
    """
    from mmengine.logging import print_log
    candidates = resume_candidates(work_dir)
    if not candidates:
        return None
    shapes = model_shapes(model) if model is not None else None
    refused: list[tuple[str, str]] = []
    for path in candidates:
        try:
            verify_checkpoint(path, shapes)
        except CheckpointError as exc:
            refused.append((path, str(exc)))
            continue
        for bad, reason in refused:
            print_log(
                f'resume: checkpoint {bad} is not usable ({reason}); '
                f'resuming from {path}, the newest valid checkpoint',
                logger=logger, level=logging.WARNING)
        return path
    tried = '; '.join(f'{p} ({r})' for p, r in refused)
    raise CheckpointError(
        f'resume: no valid checkpoint in {work_dir}; tried {len(refused)}: '
        f'{tried}. Train without --resume to start afresh, or resume from '
        'a valid checkpoint with --resume PATH')


def decide_on_rank0(decide: Callable[[], str | None]) -> str | None:
    """Run ``decide`` on rank 0 and give its result (or its
    :class:`CheckpointError`) to every rank."""
    from mmengine.dist import broadcast_object_list, get_dist_info
    rank, world_size = get_dist_info()
    if world_size == 1:
        return decide()
    box: list = [None]
    if rank == 0:
        try:
            box[0] = ('ok', decide())
        except CheckpointError as exc:
            box[0] = ('error', str(exc))
    broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == 'error':
        raise CheckpointError(value)
    return value
