"""Error reporting of pad_mm's command-line tools, and the arguments
several of them share."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    'run_tool', 'DEBUG_FLAG', 'add_model_args', 'add_baseline_args',
    'check_baseline_args'
]

#: the flag that shows the traceback of a config error
DEBUG_FLAG = '--debug'


def run_tool(main: Callable[[Sequence[str] | None], Any],
             argv: Sequence[str] | None = None) -> Any:
    """Run a tool's ``main(argv)``; a config error of pad_mm's own
    (``PADConfigError``: a bad field, value or file, found by the pre-flight
    check or the tool) prints its one line to stderr and exits with status 2,
    without the traceback. With ``--debug`` in ``argv`` the error propagates
    with its traceback. Other exceptions always propagate."""
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
