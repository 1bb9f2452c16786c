"""Run another codebase's script (mmseg's or mmpretrain's own
``tools/train.py``) on a config that inherits from a ``pad_mm::`` base::

    python -m pad_mm.utils.launch SCRIPT [ARGS ...]

mmengine resolves ``pkg::`` config paths only for the packages of its fixed
``MODULE2PACKAGE`` table, and a config's ``custom_imports`` run after its
``_base_`` is resolved, so a ``pad_mm::`` base cannot register pad_mm in
time by itself. This adds pad_mm to that table and registers pad_mm for
every installed task (:func:`pad_mm.utils.register_installed`), then runs
``SCRIPT`` unchanged as ``__main__`` with ``sys.argv = [SCRIPT, ARGS...]``.
"""
from __future__ import annotations

import os.path as osp
import runpy
import sys
from collections.abc import Sequence

__all__ = ['main']

USAGE = 'usage: python -m pad_mm.utils.launch SCRIPT [ARGS ...]'


def main(argv: Sequence[str] | None = None) -> None:
    """Register pad_mm, then run ``argv[0]`` as ``__main__``.

    Raises:
        SystemExit: no script, or no such file (status 2, with the usage);
            ``pad_mm`` is an empty namespace package (status 2, see
            :func:`pad_mm.utils.cli.shadowing_folders`).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ('-h', '--help'):
        print(USAGE, file=sys.stderr)
        raise SystemExit(2 if not args else 0)
    script = args[0]
    if not osp.isfile(script):
        print(f'{USAGE}\nSCRIPT: no such file {script!r}', file=sys.stderr)
        raise SystemExit(2)
    from .cli import exit_if_shadowed
    from .mim import register_module2package
    from .setup_env import register_installed
    exit_if_shadowed()
    register_module2package()
    register_installed()
    sys.argv = args
    sys.path.insert(0, osp.dirname(osp.abspath(script)))
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
