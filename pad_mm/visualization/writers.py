"""Write analysis results: JSON, CSV, file-name-safe layer names."""
from __future__ import annotations

import json
import os
import os.path as osp

import numpy as np

__all__ = ['write_json', 'write_csv', 'safe_name']


def write_json(obj, path: str) -> str:
    """Write ``obj`` as indented JSON (creating the folder)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2)
    return path


def write_csv(array, path: str, fmt: str = '%.6g') -> str:
    """Write a 2-D array as CSV (one row per image row)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    np.savetxt(path, np.asarray(array, dtype=float), delimiter=',', fmt=fmt)
    return path


def safe_name(name: str) -> str:
    """A module name as a file-name part."""
    return ''.join(c if c.isalnum() or c in '-_.' else '_' for c in name)
