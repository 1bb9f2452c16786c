"""Error reporting of pad_mm's command-line tools."""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ['run_tool', 'DEBUG_FLAG']

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
