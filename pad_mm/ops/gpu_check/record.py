"""The JSON file of a GPU check: written atomically after every case (by
the section's process) and after every section (by the runner)."""
from __future__ import annotations

import json
import os
from typing import Any

__all__ = ['read_json', 'write_json', 'section_status']


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def write_json(path: str, data: dict) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so
    a reader (or a kill) never sees half a file."""
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1, default=_jsonable)
    os.replace(tmp, path)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    return str(obj)


def section_status(cases: list[dict], exit_code: int | None,
                   timed_out: bool) -> str:
    """A finished section's status (see :data:`.plan.STATUSES`)."""
    if timed_out:
        return 'timed_out'
    if exit_code != 0:
        return 'failed'
    if any(c.get('status') in ('failed', 'error') for c in cases):
        return 'failed'
    return 'passed'
