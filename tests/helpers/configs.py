"""Config files parsed once per test session."""
import copy
import functools
import os.path as osp

from mmengine.config import Config


@functools.lru_cache(maxsize=None)
def _parsed(path: str) -> Config:
    return Config.fromfile(path)


def load_config(path) -> Config:
    """``Config.fromfile(path)``, parsed once per session (parsing the
    mmseg / mmpretrain bases is the slow part); returns a copy the caller
    may change."""
    return copy.deepcopy(_parsed(osp.abspath(str(path))))
