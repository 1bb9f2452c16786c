"""The config of a ``tools/train.py`` or ``tools/test.py`` run, read from
its command line the same way by both."""
from __future__ import annotations

import argparse

from mmengine.config import Config

from .inference import load_config
from .runner import set_work_dir
from .validate import validate_cfg_options, validate_work_dir

__all__ = ['load_tool_config']


def load_tool_config(args: argparse.Namespace) -> Config:
    """``args.config`` loaded (pad_mm registered for its task) with
    ``args.launcher``, the checked ``args.cfg_options`` merged in and the
    work dir set (``args.work_dir``, checked > the config's >
    ``./work_dirs/<config name>``)."""
    cfg = load_config(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        validate_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        validate_work_dir(args.work_dir, '--work-dir')
    set_work_dir(cfg, args.config, args.work_dir)
    return cfg
