"""pad_mm's registries: the scope ``pad_mm``, as mmyolo has ``mmyolo``.

This module imports only mmengine, so every layer of pad_mm may import it
(``pad_mm.models.layers`` needs torch, mmengine and mmcv; ``pad_mm.ops``
torch only).

Every pad_mm class registers here, in a child of mmengine's root registry
whose ``locations`` import the registering modules on the first lookup
(mmyolo's pattern). pad_mm spans two codebases while a registry has one
parent, so a lookup in a ``pad_mm`` registry (``type='pad_mm.X'``, or any
config dict carrying ``_scope_='pad_mm'``, which mmengine stamps on the
outermost typed dicts a config inherits from a ``pad_mm::`` base) searches,
in this order:

1. pad_mm's own task-independent registrations (``PADConv``,
   ``PADBackbone``, hooks, metric, ...);
2. pad_mm's registrations of the task in effect (segmentation only:
   ``VGG``, ``Xception65``, the FCN-skip heads, ``PADTexturesDataset``);
3. the registry of the task in effect: mmseg's or mmpretrain's (which then
   falls back to mmengine's root, as every OpenMMLab registry does).

The task in effect is the innermost default scope that names a task
(``'mmseg'``: segmentation, ``'mmpretrain'``: classification): the
runner's ``default_scope``, which pad_mm's configs set to their task. A
``_scope_='pad_mm'`` build switches mmengine's default scope to ``pad_mm``
for its duration; the enclosing task scope is still the runner's. So
``ResNetV1c`` or ``CrossEntropyLoss`` (names both codebases register, with
different classes) resolve to mmseg's classes in a segmentation run and to
mmpretrain's in a classification run. With no task scope in effect (no
runner, or another codebase's scope) a name resolves only where it is
unambiguous: a name registered differently by mmseg and mmpretrain raises
a ``KeyError`` that says to set ``default_scope`` or write
``'mmseg.X'``/``'mmpretrain.X'``.

``import pad_mm.seg`` / ``import pad_mm.cls`` (or a config's
``custom_imports=dict(imports=['pad_mm'])``) also make pad_mm's classes
visible under their plain names from the ``mmseg`` / ``mmpretrain`` scopes
(see :mod:`pad_mm.utils.setup_env`). ``docs/advanced/registry.md`` tells the
whole story.
"""
from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import INFERENCERS as MMENGINE_INFERENCERS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import \
    RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import DefaultScope, Registry

__all__ = [
    'SCOPE', 'TASK_SCOPES', 'TASKS', 'PADRegistry', 'task_of',
    'task_in_effect', 'ALL_REGISTRIES', 'RUNNERS', 'RUNNER_CONSTRUCTORS',
    'LOOPS', 'HOOKS', 'STRATEGIES', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS',
    'MODELS', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'OPTIMIZERS',
    'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS',
    'METRICS', 'EVALUATOR', 'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS',
    'LOG_PROCESSORS', 'INFERENCERS', 'FUNCTIONS'
]

#: pad_mm's registry scope (the ``pad_mm`` of ``pad_mm::`` and
#: ``'pad_mm.PADBackbone'``)
SCOPE = 'pad_mm'
#: default_scope -> task
TASK_SCOPES = {'mmseg': 'seg', 'mmpretrain': 'cls'}
#: task -> default_scope
TASKS = {task: scope for scope, task in TASK_SCOPES.items()}


def task_of(cfg) -> str:
    """``'seg'`` or ``'cls'`` from a config's ``default_scope``.

    Raises:
        ValueError: ``default_scope`` is not ``'mmseg'`` or
            ``'mmpretrain'``.
    """
    scope = cfg.get('default_scope')
    if scope not in TASK_SCOPES:
        hint = (" (pad_mm's own scope holds no task: keep the task's "
                "default_scope and write 'pad_mm.X' or inherit from a "
                "pad_mm:: base for pad_mm's types)") if scope == SCOPE else ''
        raise ValueError(f'default_scope must be one of {list(TASK_SCOPES)} '
                         f'(it selects the task), got {scope!r}{hint}')
    return TASK_SCOPES[scope]


def task_in_effect() -> str | None:
    """The task (``'seg'``/``'cls'``) of the innermost default scope that
    names one, or None.

    mmengine keeps its default scopes in creation order (a ``_scope_``
    build adds a temporary one and removes it afterwards) but offers no
    public way to see past the current one, so the enclosing scopes are read
    from ``DefaultScope._instance_dict``; without it only the current scope
    counts.
    """
    instances = getattr(DefaultScope, '_instance_dict', None)
    if instances is None:
        current = DefaultScope.get_current_instance()
        scopes = [current.scope_name] if current is not None else []
    else:
        scopes = [i.scope_name for i in reversed(list(instances.values()))]
    for scope in scopes:
        if scope in TASK_SCOPES:
            return TASK_SCOPES[scope]
    return None


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


class PADRegistry(Registry):
    """A registry of the ``pad_mm`` scope whose lookups fall back to the
    registry of the task in effect (see the module docstring).

    Args:
        name: the registry name (as mmengine's: ``'model'``, ``'hook'``).
        parent: mmengine's root registry of that name.
        locations: modules that register task-independent classes here,
            imported on the first lookup.
        task_locations: ``{task: modules}`` registering that task's
            classes (``register_module(..., task='seg')``), imported on the
            first lookup under that task.
    """

    def __init__(self, name: str, parent: Registry,
                 locations: Iterable[str] = (),
                 task_locations: dict[str, Iterable[str]] | None = None):
        super().__init__(name, parent=parent, scope=SCOPE,
                         locations=list(locations))
        self._task_locations = {t: list((task_locations or {}).get(t, ()))
                                for t in TASKS}
        self._task_dicts: dict[str, dict] = {t: {} for t in TASKS}
        self._task_imported: set[str] = set()

    # ------------------------------------------------------ registration
    def register_module(self, name=None, force: bool = False, module=None,
                        task: str | None = None):
        """mmengine's ``register_module``; ``task='seg'|'cls'`` registers
        for that task only (found only while it is in effect)."""
        if task is None:
            return super().register_module(name=name, force=force,
                                           module=module)
        if task not in TASKS:
            raise ValueError(f'task must be one of {list(TASKS)}, got '
                             f'{task!r}')

        def register(obj):
            names = [obj.__name__] if name is None else (
                [name] if isinstance(name, str) else list(name))
            table = self._task_dicts[task]
            for key in names:
                if not force and key in table and table[key] is not obj:
                    raise KeyError(f'{key} is already registered in '
                                   f'{self.name} ({task}) at '
                                   f'{table[key].__module__}')
                table[key] = obj
            return obj

        return register if module is None else register(module)

    def task_module_dict(self, task: str) -> dict:
        """pad_mm's registrations for ``task`` (its modules imported)."""
        self._import_task(task)
        return dict(self._task_dicts[task])

    # ----------------------------------------------------------- lookup
    def import_from_location(self) -> None:
        """Import the task-independent locations (never mmengine's
        fallback to ``<scope>.utils.register_all_modules``)."""
        if not self._imported:
            self._imported = True
            for loc in self._locations:
                importlib.import_module(loc)

    def _import_task(self, task: str) -> None:
        if task not in self._task_imported:
            self._task_imported.add(task)
            for loc in self._task_locations[task]:
                importlib.import_module(loc)

    def upstream(self, task: str) -> Registry | None:
        """The registry of ``task``'s codebase with this registry's name
        (None when that codebase is not installed or has none)."""
        scope = TASKS[task]
        if not _installed(scope):
            return None
        importlib.import_module(f'{scope}.registry')
        return self.parent.children.get(scope)

    def _task_get(self, task: str, key: str, own_only: bool):
        self._import_task(task)
        if key in self._task_dicts[task]:
            return self._task_dicts[task][key]
        if own_only:
            return None
        registry = self.upstream(task)
        return registry.get(key) if registry is not None else None

    def get(self, key: str):
        """Look ``key`` up: pad_mm's own, pad_mm's for the task in effect,
        then the task's registry (see the module docstring). Keys scoped to
        another codebase (``'mmseg.X'``) follow mmengine's rules."""
        if not isinstance(key, str):
            return super().get(key)
        scope, name = self.split_scope_key(key)
        if scope not in (None, SCOPE):
            return super().get(key)
        self.import_from_location()
        if name in self._module_dict:
            return self._module_dict[name]
        task = task_in_effect()
        if task is not None:
            tasks = [task]
        else:  # no task in effect: any installed task, if unambiguous
            tasks = [t for t, s in TASKS.items() if _installed(s)]
        found = {}
        for t in tasks:
            obj = self._task_get(t, name, own_only=scope is not None)
            if obj is not None:
                found[t] = obj
        if len({id(o) for o in found.values()}) > 1:
            raise KeyError(
                f'{name!r} names different classes in '
                f'{" and ".join(TASKS[t] for t in found)} and no task scope '
                'is in effect: set default_scope to the task '
                f"({' or '.join(repr(s) for s in TASKS.values())}) or write "
                f"{' or '.join(repr(f'{TASKS[t]}.{name}') for t in found)}")
        if found:
            return next(iter(found.values()))
        if scope is None and self.parent is not None:
            return self.parent.get(name)
        return None


def _registry(name: str, parent: Registry, locations=(),
              task_locations=None) -> PADRegistry:
    return PADRegistry(name, parent, locations, task_locations)


_MODEL_LOCATIONS = ['pad_mm.models', 'pad_mm.runtime.sync_bn']
_SEG_MODELS = ['pad_mm.models.heads']

# runner and training loop
RUNNERS = _registry('runner', MMENGINE_RUNNERS)
RUNNER_CONSTRUCTORS = _registry('runner constructor',
                                MMENGINE_RUNNER_CONSTRUCTORS)
LOOPS = _registry('loop', MMENGINE_LOOPS)
HOOKS = _registry('hook', MMENGINE_HOOKS, ['pad_mm.engine.hooks'])
STRATEGIES = _registry('strategy', MMENGINE_STRATEGIES)
# data
DATASETS = _registry('dataset', MMENGINE_DATASETS,
                     task_locations=dict(
                         seg=['pad_mm.datasets'],
                         cls=['pad_mm.datasets.textures_cls_dataset']))
DATA_SAMPLERS = _registry('data sampler', MMENGINE_DATA_SAMPLERS)
TRANSFORMS = _registry('transform', MMENGINE_TRANSFORMS)
# models
MODELS = _registry('model', MMENGINE_MODELS, _MODEL_LOCATIONS,
                   dict(seg=_SEG_MODELS))
MODEL_WRAPPERS = _registry('model_wrapper', MMENGINE_MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _registry('weight initializer',
                                MMENGINE_WEIGHT_INITIALIZERS,
                                ['pad_mm.models.backbones.pretrained'])
# optimization
OPTIMIZERS = _registry('optimizer', MMENGINE_OPTIMIZERS)
OPTIM_WRAPPERS = _registry('optim_wrapper', MMENGINE_OPTIM_WRAPPERS,
                           ['pad_mm.runtime.amp'])
OPTIM_WRAPPER_CONSTRUCTORS = _registry('optimizer wrapper constructor',
                                       MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _registry('parameter scheduler',
                             MMENGINE_PARAM_SCHEDULERS)
# evaluation
METRICS = _registry('metric', MMENGINE_METRICS,
                    ['pad_mm.evaluation.dilation_metric',
                     'pad_mm.evaluation.evidence'])
EVALUATOR = _registry('evaluator', MMENGINE_EVALUATOR)
TASK_UTILS = _registry('task util', MMENGINE_TASK_UTILS)
# visualization, logging, inference
VISUALIZERS = _registry('visualizer', MMENGINE_VISUALIZERS)
VISBACKENDS = _registry('vis_backend', MMENGINE_VISBACKENDS)
LOG_PROCESSORS = _registry('log_processor', MMENGINE_LOG_PROCESSORS)
INFERENCERS = _registry('inferencer', MMENGINE_INFERENCERS)
FUNCTIONS = _registry('function', MMENGINE_FUNCTIONS,
                      ['pad_mm.visualization', 'pad_mm.evaluation.recorder'])

#: name of mmengine's root registry -> pad_mm's registry
ALL_REGISTRIES: dict[str, PADRegistry] = {
    r.name: r
    for r in (RUNNERS, RUNNER_CONSTRUCTORS, LOOPS, HOOKS, STRATEGIES,
              DATASETS, DATA_SAMPLERS, TRANSFORMS, MODELS, MODEL_WRAPPERS,
              WEIGHT_INITIALIZERS, OPTIMIZERS, OPTIM_WRAPPERS,
              OPTIM_WRAPPER_CONSTRUCTORS, PARAM_SCHEDULERS, METRICS,
              EVALUATOR, TASK_UTILS, VISUALIZERS, VISBACKENDS,
              LOG_PROCESSORS, INFERENCERS, FUNCTIONS)
}
