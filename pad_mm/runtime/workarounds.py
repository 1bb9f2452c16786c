"""The table of pad_mm's upstream workarounds, their version guard and the
one switch that turns them all off.

Each workaround lives in one module of :mod:`pad_mm.runtime` that names
the upstream issue it works around, and is declared here with the upstream
package and the versions it is written for. :func:`apply_workarounds`
(run by ``import pad_mm.seg`` / ``import pad_mm.cls`` and by pad_mm's
tools) applies each one whose package has one of those versions; on any
other version it logs one line and leaves upstream alone. With the
environment variable ``PAD_MM_NO_PATCH=1`` nothing is applied (and nothing
is logged). ``import pad_mm`` alone never applies anything.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    'Workaround', 'WORKAROUNDS', 'NO_PATCH_ENV', 'workarounds_enabled',
    'apply_workarounds', 'applied_workarounds'
]

#: set to 1 (or true/yes) to keep pad_mm from patching upstream
NO_PATCH_ENV = 'PAD_MM_NO_PATCH'

logger = logging.getLogger('pad_mm')


@dataclass(frozen=True)
class Workaround:
    """One upstream workaround.

    Attributes:
        name: its name in logs and docs.
        upstream: the upstream issue (or the upstream code) it works
            around.
        package: the patched distribution (``'mmengine'``).
        versions: the versions of ``package`` it is written for.
        module: the module of :mod:`pad_mm.runtime` it lives in.
        apply: ``'function'`` of ``module`` that applies it (idempotent).
    """
    name: str
    upstream: str
    package: str
    versions: tuple[str, ...]
    module: str
    apply: str = 'apply'

    def installed_version(self) -> str | None:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return None

    def guard(self) -> str | None:
        """None when it may be applied, else why not (one line)."""
        found = self.installed_version()
        if found in self.versions:
            return None
        return (f'pad_mm: workaround {self.name!r} ({self.upstream}) is '
                f'written for {self.package} {", ".join(self.versions)}, '
                f'found {found}: not applied')

    def function(self) -> Callable[[], object]:
        return getattr(importlib.import_module(self.module), self.apply)


_MMENGINE = ('0.10.7', )

#: every workaround, in the order they are applied
WORKAROUNDS: tuple[Workaround, ...] = (
    Workaround('trusted-torch-load',
               'open-mmlab/mmengine#1655 (torch >= 2.6 weights_only)',
               'mmengine', _MMENGINE, 'pad_mm.runtime.torch_load'),
    Workaround('cpu-dist-init',
               'mmengine.dist.utils._init_dist_pytorch needs CUDA',
               'mmengine', _MMENGINE, 'pad_mm.runtime.dist_init'),
    Workaround('pad-prior-keys',
               'mmengine.runner.checkpoint.load_state_dict lists every '
               'missing PAD prior key', 'mmengine', _MMENGINE,
               'pad_mm.runtime.prior_keys'),
    Workaround('atomic-checkpoints',
               'mmengine writes checkpoints in place (torn files; '
               'open-mmlab/mmdetection#4835)', 'mmengine', _MMENGINE,
               'pad_mm.runtime.checkpoint', 'apply_atomic_save'),
    Workaround('verified-resume',
               'mmengine resumes from a torn checkpoint', 'mmengine',
               _MMENGINE, 'pad_mm.runtime.checkpoint',
               'apply_verified_resume'),
)

_applied: list[str] = []
_skipped: set[str] = set()


def workarounds_enabled() -> bool:
    """False when ``PAD_MM_NO_PATCH`` is 1/true/yes."""
    return os.environ.get(NO_PATCH_ENV, '').strip().lower() not in (
        '1', 'true', 'yes')


def applied_workarounds() -> list[str]:
    """Names of the workarounds applied in this process."""
    return list(_applied)


def apply_workarounds() -> list[str]:
    """Apply every workaround whose guard passes (once per process; logs
    one INFO line naming them and the switch, and one line per workaround
    left out for its version). Nothing when the switch is off. Returns the
    names applied."""
    if not workarounds_enabled():
        return []
    new = []
    for w in WORKAROUNDS:
        if w.name in _applied or w.name in _skipped:
            continue
        why = w.guard()
        if why is not None:
            _skipped.add(w.name)
            logger.warning(why)
            continue
        w.function()()
        _applied.append(w.name)
        new.append(w.name)
    if new:
        logger.info(
            f'pad_mm: upstream workarounds applied: {", ".join(new)} '
            f'(docs/advanced/upstream_workarounds.md); set '
            f'{NO_PATCH_ENV}=1 to turn this off')
    return new
