"""Register pad_mm with the codebases it builds on.

pad_mm's classes live in its own registries (:mod:`pad_mm.registry`,
scope ``pad_mm``). :func:`register_task` also makes them visible under
their plain names from a task's scope, which is what ``import pad_mm.seg``
/ ``import pad_mm.cls`` (a config's ``custom_imports``) do:

- task-independent classes (``PADConv``, ``PADBackbone``, hooks, ...) go
  into mmengine's root registries, so that every scope finds them (mmcv's
  ``build_conv_layer(dict(type='PADConv'))`` included), as mmcv's own
  ``DCNv2`` is found;
- the task's classes (segmentation: ``VGG``, ``Xception65``, FCN-skip
  heads, ``PADTexturesDataset``) go into mmseg's / mmpretrain's registries
  only (mmpretrain has a ``VGG`` of its own).

A name another class already holds there is an error, never overwritten.
"""
from __future__ import annotations

__all__ = ['register_all_modules', 'register_task', 'register_config',
           'register_installed', 'SCOPES']

#: default scopes pad_mm configs use (they select the task)
SCOPES = ('mmseg', 'mmpretrain')

_registered: set[str] = set()


def _publish(target, entries: dict, source: str) -> None:
    for name, obj in entries.items():
        held = target.module_dict.get(name)
        if held is obj:
            continue
        if held is not None:
            raise KeyError(
                f'pad_mm cannot register {name!r} ({source}) in the '
                f'{target.scope}::{target.name} registry: '
                f'{held.__module__}.{getattr(held, "__name__", held)} holds '
                f"that name; write 'pad_mm.{name}' to use pad_mm's")
        target.register_module(name=name, module=obj)


def register_task(task: str) -> None:
    """Make pad_mm's classes visible from ``task``'s scope (idempotent),
    let mmengine resolve ``pad_mm::`` config paths, register the
    classification model index with mmpretrain (``task='cls'``), and apply
    the upstream workarounds (unless switched off, see
    :mod:`pad_mm.runtime`).

    Args:
        task: ``'seg'`` (mmseg) or ``'cls'`` (mmpretrain).

    Warns (a ``UserWarning``) when ``pad_mm`` itself was imported as an
    empty namespace package (a folder named ``pad_mm`` shadows it, see
    :func:`pad_mm.utils.cli.shadowing_folders`): the task is registered,
    but what ``import pad_mm`` does is missing.

    Raises:
        ValueError: another task.
        ImportError: the task's codebase is not installed.
    """
    from pad_mm.registry import ALL_REGISTRIES, TASKS
    if task not in TASKS:
        raise ValueError(f'task must be one of {list(TASKS)}, got {task!r}')
    if task in _registered:
        return
    import importlib
    import warnings

    from .cli import shadow_message, shadowing_folders
    folders = shadowing_folders()
    if folders is not None:
        warnings.warn(f'pad_mm: {shadow_message(folders)}', stacklevel=2)
    scope = TASKS[task]
    try:
        importlib.import_module(f'{scope}.registry')
    except ImportError as exc:
        extra = {'seg': 'seg', 'cls': 'cls'}[task]
        raise ImportError(
            f'pad_mm.{task} needs {scope}: pip install "pad_mm[{extra}]" '
            f'({exc})') from exc
    from .mim import register_model_hub, register_module2package
    register_module2package()
    for registry in ALL_REGISTRIES.values():
        registry.import_from_location()
        _publish(registry.parent, dict(registry.module_dict), 'pad_mm')
        own = registry.task_module_dict(task)
        if own:
            upstream = registry.upstream(task)
            _publish(upstream if upstream is not None else registry.parent,
                     own, f'pad_mm, {task}')
    if task == 'cls':
        register_model_hub()
    from pad_mm.runtime import apply_workarounds
    apply_workarounds()
    _registered.add(task)


def register_config(cfg) -> str | None:
    """:func:`register_task` for a config's task (its ``default_scope``);
    returns the task, or None (nothing done) when ``default_scope`` names
    none (the pre-flight check reports that)."""
    from pad_mm.registry import TASK_SCOPES
    task = TASK_SCOPES.get(cfg.get('default_scope'))
    if task is not None:
        register_task(task)
    return task


def register_installed() -> list[str]:
    """:func:`register_task` for every installed task codebase (mmseg,
    mmpretrain): what a config's ``custom_imports=dict(imports=['pad_mm'])``
    does (see :mod:`pad_mm`). Returns the tasks."""
    import importlib.util

    from pad_mm.registry import TASKS
    tasks = [t for t, s in TASKS.items()
             if importlib.util.find_spec(s) is not None]
    for task in tasks:
        register_task(task)
    return tasks


def register_all_modules(init_default_scope: bool = True,
                         scope: str = 'mmseg') -> None:
    """Register pad_mm for the task of ``scope`` (:func:`register_task`)
    and that codebase's own modules, as ``mmseg.utils`` /
    ``mmpretrain.utils`` offer it.

    Args:
        init_default_scope: also make ``scope`` the current default scope
            (a new ``DefaultScope`` instance if another one is current).
        scope: ``'mmseg'`` (segmentation) or ``'mmpretrain'``
            (classification).

    Raises:
        ValueError: ``scope`` is not one of them.
    """
    if scope not in SCOPES:
        raise ValueError(f'scope must be one of {list(SCOPES)}, got '
                         f'{scope!r}')
    import importlib

    from pad_mm.registry import TASK_SCOPES
    register_task(TASK_SCOPES[scope])
    importlib.import_module(f'{scope}.utils').register_all_modules(
        init_default_scope=False)
    if init_default_scope:
        from mmengine.registry import init_default_scope as _init
        _init(scope)
