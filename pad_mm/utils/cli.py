"""Error reporting of pad_mm's command-line tools, the check where they
start that ``pad_mm`` is the real package, and the arguments several of
them share."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    'run_tool', 'DEBUG_FLAG', 'add_model_args', 'add_baseline_args',
    'check_baseline_args', 'shadowing_folders', 'shadow_message',
    'exit_if_shadowed'
]

#: the flag that shows the traceback of a config error
DEBUG_FLAG = '--debug'
#: the package whose import is checked
PACKAGE = 'pad_mm'


def shadowing_folders() -> list[str] | None:
    """The folders of an empty namespace package ``pad_mm``, or None.

    A folder named ``pad_mm`` without ``__init__.py`` (the clone of this
    repository is one) in the current directory or elsewhere on
    ``sys.path`` makes ``import pad_mm`` a namespace package when the real
    package is found only by an import hook that comes after the path
    search, as setuptools' editable install (``pip install -e .``) is: the
    real ``pad_mm/__init__.py`` never runs. Its submodules still import
    (through that hook), so pad_mm's tools run, but nothing that
    ``import pad_mm`` does happens (a config's ``custom_imports`` registers
    nothing, ``pad_mm.__version__`` is missing).

    Returns:
        The namespace package's folders when ``pad_mm`` was imported as one;
        None when it is the real package or was not imported.
    """
    module = sys.modules.get(PACKAGE)
    if module is None or getattr(module, '__file__', None) is not None:
        return None
    import os.path as osp
    folders: list[str] = []
    for path in getattr(module, '__path__', []):
        path = osp.abspath(str(path))
        if path not in folders:  # the same folder reached twice on sys.path
            folders.append(path)
    return folders


def shadow_message(folders: Sequence[str]) -> str:
    """The one-line explanation of :func:`shadowing_folders`' result."""
    where = ', '.join(repr(f) for f in folders) or '(no folder)'
    return (f'"import {PACKAGE}" found the folder {where}, not the installed '
            f'{PACKAGE}: a folder named {PACKAGE} without __init__.py (a '
            f'clone of {PACKAGE}?) in the current directory or on '
            f'PYTHONPATH shadows it, so {PACKAGE} is an empty namespace '
            'package and registers nothing. Run from another directory '
            '(e.g. cd into the clone) or take that folder off PYTHONPATH; '
            f'a regular install (pip install .) is not shadowed')


def exit_if_shadowed() -> None:
    """Where a tool starts: ``import pad_mm``, and if that gave an empty
    namespace package (:func:`shadowing_folders`) print
    :func:`shadow_message` to stderr and exit with status 2."""
    try:
        __import__(PACKAGE)
    except ImportError:  # pragma: no cover  (this module is pad_mm's)
        return
    folders = shadowing_folders()
    if folders is not None:
        print(f'error: {shadow_message(folders)}', file=sys.stderr)
        raise SystemExit(2)


def run_tool(main: Callable[[Sequence[str] | None], Any],
             argv: Sequence[str] | None = None) -> Any:
    """Run a tool's ``main(argv)``, first checking that ``pad_mm`` is the
    real package (:func:`exit_if_shadowed`); a config error of pad_mm's own
    (``PADConfigError``: a bad field, value or file, found by the pre-flight
    check or the tool) prints its one line to stderr and exits with status 2,
    without the traceback. With ``--debug`` in ``argv`` the error propagates
    with its traceback. Other exceptions always propagate."""
    exit_if_shadowed()
    from pad_mm.models.pad_cfg import PADConfigError
    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args
    try:
        return main(args)
    except PADConfigError as exc:
        if debug:
            raise
        print(f'{type(exc).__name__}: {exc}  (run with {DEBUG_FLAG} for the '
              'traceback)', file=sys.stderr)
        raise SystemExit(2) from None


def add_model_args(parser: argparse.ArgumentParser,
                   model: str = '',
                   image: str | None = None) -> None:
    """The arguments of an analysis tool that reads a trained model: the
    positionals ``config`` and ``checkpoint`` (``model``, e.g. ``'PAD '``,
    prefixes their help), ``image`` when ``image`` (its help) is given, and
    a required ``--out-dir``."""
    parser.add_argument('config', help=f'{model}config file')
    parser.add_argument('checkpoint', help=f'{model}checkpoint file')
    if image is not None:
        parser.add_argument('image', help=image)
    parser.add_argument('--out-dir', required=True, help='output folder')


def add_baseline_args(parser: argparse.ArgumentParser) -> None:
    """``--baseline-config`` and ``--baseline-checkpoint``: the regular model
    a PAD model is compared with (both or neither, see
    :func:`check_baseline_args`)."""
    parser.add_argument('--baseline-config', help='regular model config')
    parser.add_argument('--baseline-checkpoint', help='regular checkpoint')


def check_baseline_args(parser: argparse.ArgumentParser,
                        args: argparse.Namespace) -> argparse.Namespace:
    """``args``, after a parser error (exit 2) if only one of the
    :func:`add_baseline_args` arguments is given."""
    if (args.baseline_config is None) != (args.baseline_checkpoint is None):
        parser.error('--baseline-config and --baseline-checkpoint go '
                     'together')
    return args
