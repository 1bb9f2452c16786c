"""Slowed checkpoint writes for the kill-and-resume tests (test only).

Imported inside training subprocesses through ``custom_imports`` (with this
folder on ``PYTHONPATH``). When ``PAD_TEST_SLOW_SAVE`` names a marker file,
the ``PAD_TEST_SLOW_SAVE_AT``-th ``torch.save`` into a named file of the
process (1-based; checkpoints: torch.distributed also calls ``torch.save``,
into unnamed buffers, and in a distributed run only rank 0 saves) writes its bytes in
``PAD_TEST_SLOW_SAVE_CHUNKS`` chunks with ``PAD_TEST_SLOW_SAVE_DELAY``
seconds between them. After the first chunk is written and flushed it
appends ``start <n> <pid> <total bytes> <file written>`` to the marker; when
the last chunk is written, ``done <n>``. A marker with ``start`` and no
``done`` proves the process died in the middle of that write.
"""
import io
import os
import time

import torch

_REAL_SAVE = torch.save
_calls = [0]


def _marker(line: str) -> None:
    with open(os.environ['PAD_TEST_SLOW_SAVE'], 'a') as f:
        f.write(line + '\n')
        f.flush()
        os.fsync(f.fileno())


def slow_save(obj, f, *args, **kwargs):
    if isinstance(f, (str, os.PathLike)) or \
            not isinstance(getattr(f, 'name', None), str):
        return _REAL_SAVE(obj, f, *args, **kwargs)
    _calls[0] += 1
    n = _calls[0]
    if n != int(os.environ.get('PAD_TEST_SLOW_SAVE_AT', '1')):
        return _REAL_SAVE(obj, f, *args, **kwargs)
    buffer = io.BytesIO()
    _REAL_SAVE(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    chunks = int(os.environ.get('PAD_TEST_SLOW_SAVE_CHUNKS', '20'))
    delay = float(os.environ.get('PAD_TEST_SLOW_SAVE_DELAY', '0.25'))
    step = max(1, -(-len(data) // chunks))
    for i, start in enumerate(range(0, len(data), step)):
        f.write(data[start:start + step])
        f.flush()
        if i == 0:
            _marker(f'start {n} {os.getpid()} {len(data)} {f.name}')
        time.sleep(delay)
    _marker(f'done {n}')


if os.environ.get('PAD_TEST_SLOW_SAVE'):
    torch.save = slow_save
