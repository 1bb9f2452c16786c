"""Pre-flight validation of a pad_mm config and of the tools' arguments.

``tools/train.py`` and ``tools/test.py`` call :func:`validate_config` after
the config is assembled and before the Runner is built, so a bad value
fails in seconds with one error that names the field, the value and what
is allowed, instead of minutes later (or never: silently ignored). Every
error is a :class:`~pad_mm.models.PADConfigError` (a ``ValueError``;
missing files are :class:`PADConfigFileError`, also a
``FileNotFoundError``).

What is checked:

- ``default_scope``;
- PAD: every ``PADBackbone`` is built on the ``meta`` device (no memory,
  no weights), which parses its ``pad_cfg`` with the one settings parser
  (:mod:`pad_mm.models.pad_cfg`) and matches its patterns against the
  base model's convs; a :class:`~pad_mm.models.PADConfigError` is
  re-raised with the config path in front. Every ``PADConv`` config dict
  (e.g. ``conv_cfg``) is parsed the same way;
- a dry forward pass of the built model on a small random input (catches
  chains whose layers cannot be chained: wrong order, different batches,
  raised by the layers as :class:`~pad_mm.models.PADChainError`), with
  the RNG state left untouched;
- training with batch size 1 in one process: a training-mode forward pass
  of one sample names the first batch-norm layer that would see one value
  per channel (``train_dataloader.batch_size``);
- ``custom_hooks`` (registered type, arguments of pad_mm's hooks);
- the data loaders (``batch_size``, ``num_workers``, ``data_root`` and
  ``data_prefix`` exist and hold files of the expected format, the
  generator parameters of ``PADTexturesDataset``);
- checkpoint files: ``load_from``, ``model.pretrained``, every
  ``init_cfg=dict(type='Pretrained'|'CheckedPretrained', checkpoint=...)``;
- ``train_cfg`` lengths, ``optim_wrapper`` type/AMP dtype, ``randomness``,
  ``work_dir``, ``launcher`` environment;
- ``--cfg-options``: keys and values (:mod:`.cfg_keys`).

Types are looked up as mmengine's build will (:func:`lookup`): in the
scope of a dict's ``_scope_`` (which mmengine stamps on what a config
inherits from a ``pkg::`` base, e.g. ``pad_mm::``), else the config's
``default_scope``.
"""
from __future__ import annotations

import copy
import inspect
import os
import os.path as osp
from typing import Any

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import (HOOKS, MODELS, OPTIM_WRAPPERS, Registry,
                               init_default_scope)

from pad_mm.engine.hooks.rng_hook import get_rng_state, set_rng_state
from pad_mm.models.backbones.pretrained import PRETRAINED_TYPES
from pad_mm.models.layers import PADChainError, pad_layers
from pad_mm.models import PADConfigError, parse_settings
from pad_mm.registry import SCOPE, TASK_SCOPES
from pad_mm.runtime.amp import AMP_DTYPES
from pad_mm.runtime.sync_bn import CPUSyncBatchNorm

from .cfg_keys import check_cfg_keys
from .runner import LAUNCHERS
from .validate_data import (PADConfigFileError, check_loader, is_int,
                            need_file, positive_int, walk)

__all__ = [
    'PADConfigError', 'PADConfigFileError', 'validate_config',
    'validate_cfg_options', 'validate_work_dir', 'lookup'
]

# nn.Conv2d arguments a PADConv config dict may carry besides the settings
CONV_KEYS = ('type', 'in_channels', 'out_channels', 'kernel_size', 'stride',
             'padding', 'dilation', 'groups', 'bias', 'padding_mode')
# the norms that need more than one value per channel in training
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
               nn.SyncBatchNorm, CPUSyncBatchNorm)
# keys of a config dict that are not constructor arguments
BUILD_KEYS = ('type', '_scope_')


def lookup(root: Registry, node: dict, field: str):
    """The class ``node['type']`` names, looked up as mmengine's build
    will: in the registry of ``node['_scope_']`` (which mmengine stamps on
    dicts inherited from a ``pkg::`` base) or else of the current default
    scope. None when it is not registered.

    Raises:
        PADConfigError: ``_scope_`` names no registry (field
            ``<field>._scope_``).
    """
    scope = node.get('_scope_')
    if scope is not None and scope != root.scope and \
            scope not in root.children:
        try:  # as mmengine does: a scope's registry module adds its nodes
            __import__(f'{scope}.registry')
        except ImportError:
            pass
        if scope not in root.children:
            raise PADConfigError(
                f'{field}._scope_', scope,
                f'a scope with a registry, e.g. {SCOPE!r} or one of '
                f'{list(TASK_SCOPES)}', f'no {root.name} registry has it')
    typ = node.get('type')
    if not isinstance(typ, str):
        return typ
    with root.switch_scope_and_registry(scope) as registry:
        try:
            return registry.get(typ)
        except KeyError as exc:  # pad_mm's registry: an ambiguous name
            raise PADConfigError(f'{field}.type', typ,
                                 'a type the scope resolves',
                                 str(exc).strip('"')) from None


def is_type(node: dict, name: str) -> bool:
    """Whether ``node`` is a ``name`` (also written ``'pad_mm.<name>'``)."""
    return node.get('type') in (name, f'{SCOPE}.{name}')


def _models_registry(scope: str | None = None):
    """The MODELS registry of ``scope`` or the current default scope."""
    with MODELS.switch_scope_and_registry(scope) as registry:
        return registry


# ------------------------------------------------------------------- PAD
def _build_pad_backbone(path: str, node: dict,
                        scope: str | None = None) -> None:
    """Build a ``PADBackbone`` node on the meta device (on the CPU if the
    base backbone cannot be built on meta); PAD errors come back with the
    config path in front."""
    registry = _models_registry(scope)
    base = node.get('base_type')
    error: Exception | None = None
    for device in ('meta', 'cpu'):
        try:
            with torch.device(device):
                registry.build(copy.deepcopy(node))
            return
        except PADConfigError as e:
            raise e.at(path) from None
        except Exception as e:  # noqa: BLE001  (report the upstream error)
            error = e
    raise PADConfigError(path, f'{base}(...)',
                         f'arguments accepted by {base}',
                         f'{type(error).__name__}: {error}') from error


def _check_pad_model(model_cfg: dict) -> None:
    nodes = list(walk(model_cfg, 'model'))
    for path, node in nodes:
        if is_type(node, 'PADConv'):
            settings = parse_settings(node, path, ignore=CONV_KEYS)
            if settings.aggregation not in ('markov', 'static'):
                raise PADConfigError(
                    f'{path}.aggregation', node['aggregation'],
                    "'markov' or 'static' for PADConv built from a config "
                    'dict (such layers are not linked into a chain); chains: '
                    "PADBackbone(pad_cfg=dict(layers=..., aggregation=...))")
    scope = model_cfg.get('_scope_')  # the outermost dict carries it
    for path, node in nodes:
        if is_type(node, 'PADBackbone'):
            _build_pad_backbone(path, node, scope)


def _input_size(cfg) -> tuple[int, int]:
    size = (cfg.model.get('data_preprocessor') or {}).get('size') or \
        cfg.get('crop_size') or (64, 64)
    if isinstance(size, int):
        size = (size, size)
    return tuple(max(32, min(int(s), 128)) for s in size)


def _single_sample_bn(model, h: int, w: int) -> tuple[str, tuple] | None:
    """The first batch-norm layer (name, input shape) that sees one value
    per channel in a training-mode forward pass of one [1, 3, h, w] input
    (torch then raises "Expected more than 1 value per channel when
    training"); None if there is none (or the forward fails otherwise)."""
    found: list[tuple[str, tuple]] = []

    def probe(name):
        def hook(module, args):
            x = args[0]
            if module.training and x.dim() >= 2 and \
                    x.numel() == x.shape[1] and not found:
                found.append((name, tuple(x.shape)))
        return hook

    handles = [m.register_forward_pre_hook(probe(n))
               for n, m in model.named_modules()
               if isinstance(m, BATCH_NORMS)]
    if not handles:
        return None
    try:
        with torch.no_grad():
            model(torch.randn(1, 3, h, w), mode='tensor')
    except Exception:  # noqa: BLE001  (the BN error itself, or a guess)
        pass
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None


def _train_batch_of_one(cfg, mode: str) -> bool:
    """Training with one sample per step (one process, batch_size 1)."""
    loader = cfg.get('train_dataloader') or {}
    single = cfg.get('launcher', 'none') == 'none' or \
        os.environ.get('WORLD_SIZE', '1') == '1'
    return mode == 'train' and single and loader.get('batch_size') == 1


def _dry_run(cfg, mode: str = 'train') -> None:
    """Build the model and run one forward pass in train mode on random
    data (the caller restores the RNG state). Only a
    :class:`~pad_mm.models.PADChainError` fails the check: the input is a
    guess, so any other forward error is logged and left to the real
    run."""
    try:
        model = MODELS.build(copy.deepcopy(cfg.model))
    except PADConfigError:
        raise
    except Exception as e:  # noqa: BLE001  (report the upstream error)
        raise PADConfigError('model', cfg.model.get('type'),
                             'a model config that builds',
                             f'{type(e).__name__}: {e}') from e
    one = _train_batch_of_one(cfg, mode)
    if next(pad_layers(model), None) is None and not one:
        return
    model = revert_sync_batchnorm(model)  # SyncBN needs a process group
    h, w = _input_size(cfg)
    model.train()
    if one:
        bad = _single_sample_bn(model, h, w)
        if bad is not None:
            raise PADConfigError(
                'train_dataloader.batch_size', 1,
                'a batch size >= 2 per process for a model with batch norm '
                "(or a norm that works on one sample, e.g. norm_cfg="
                "dict(type='GN', ...))",
                f'batch-norm layer model.{bad[0]} gets an input of shape '
                f'{list(bad[1])} (one value per channel), which fails in '
                'training ("Expected more than 1 value per channel")')
        if next(pad_layers(model), None) is None:
            return
    try:
        with torch.no_grad():
            model(torch.randn(2, 3, h, w), mode='tensor')
    except PADChainError as e:
        path, pad_cfg = _pad_cfg_of(cfg.model)
        raise PADConfigError(
            f'{path}.pad_cfg', pad_cfg,
            'chains over layers that run one after the other in the '
            'listed (module) order and see inputs of one batch',
            f'dry forward pass failed: {e}') from e
    except Exception as e:  # noqa: BLE001  (the input is only a guess)
        print_log(f'pre-flight: dry forward pass on a [2, 3, {h}, {w}] '
                  f'input skipped ({type(e).__name__}: {e})',
                  logger='current')


def _pad_cfg_of(model_cfg: dict) -> tuple[str, Any]:
    for path, node in walk(model_cfg, 'model'):
        if is_type(node, 'PADBackbone'):
            return path, node.get('pad_cfg')
    return 'model', None


# ----------------------------------------------------------------- hooks
def _check_hooks(cfg) -> None:
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        field = f'custom_hooks[{i}]'
        if not isinstance(hook, dict) or 'type' not in hook:
            raise PADConfigError(field, hook, "a hook config dict with "
                                 "'type'")
        typ = hook['type']
        cls = lookup(HOOKS, hook, field)
        if cls is None:
            raise PADConfigError(f'{field}.type', typ,
                                 'a registered hook type, e.g. '
                                 "'PADTauHook'")
        if not str(getattr(cls, '__module__', '')).startswith('pad_mm'):
            continue
        kwargs = {k: v for k, v in hook.items()
                  if k not in BUILD_KEYS + ('priority', )}
        params = inspect.signature(cls.__init__).parameters
        for key in kwargs:
            if key not in params:
                allowed = [p for p in params if p != 'self']
                raise PADConfigError(f'{field}.{key}', kwargs[key],
                                     f'arguments {allowed} of {typ}',
                                     f'unknown argument {key!r}')
        try:
            cls(**kwargs)
        except PADConfigError as e:
            raise e.at(field) from None
        except (TypeError, ValueError) as e:
            raise PADConfigError(field, hook, f'arguments {typ} accepts',
                                 str(e)) from None


# ----------------------------------------------------------- checkpoints
def _check_checkpoints(cfg, mode: str) -> None:
    load_from = cfg.get('load_from')
    if load_from is not None and mode == 'train':
        need_file('load_from', load_from, 'checkpoint (.pth)')
    pretrained = cfg.model.get('pretrained')
    if pretrained is not None:
        need_file('model.pretrained', pretrained, 'checkpoint (.pth)')
    for path, node in walk(cfg.model, 'model'):
        init = node.get('init_cfg')
        inits = init if isinstance(init, (list, tuple)) else [init]
        for j, ic in enumerate(inits):
            if isinstance(ic, dict) and ic.get('type') in PRETRAINED_TYPES:
                sub = f'{path}.init_cfg' + (f'[{j}]' if isinstance(
                    init, (list, tuple)) else '')
                need_file(f'{sub}.checkpoint', ic.get('checkpoint'),
                           'checkpoint (.pth)')


# --------------------------------------------------------------- runtime
def _check_runtime(cfg, mode: str) -> None:
    train_cfg = cfg.get('train_cfg') or {}
    if mode == 'train':
        for key in ('max_iters', 'max_epochs', 'val_interval', 'val_begin'):
            if key in train_cfg:
                positive_int(f'train_cfg.{key}', train_cfg[key])
        wrapper = cfg.get('optim_wrapper') or {}
        typ = wrapper.get('type', 'OptimWrapper')
        if isinstance(typ, str) and lookup(
                OPTIM_WRAPPERS, dict(wrapper, type=typ),
                'optim_wrapper') is None:
            raise PADConfigError('optim_wrapper.type', typ,
                                 'a registered optimizer wrapper '
                                 '(OptimWrapper, AmpOptimWrapper, '
                                 'CPUAmpOptimWrapper, ...)')
        if typ in ('AmpOptimWrapper', 'CPUAmpOptimWrapper') and \
                wrapper.get('dtype') is not None and \
                wrapper['dtype'] not in AMP_DTYPES:
            raise PADConfigError('optim_wrapper.dtype', wrapper['dtype'],
                                 f'one of {list(AMP_DTYPES)}')
    rnd = cfg.get('randomness') or {}
    if 'seed' in rnd and rnd['seed'] is not None and (
            not is_int(rnd['seed']) or rnd['seed'] < 0):
        raise PADConfigError('randomness.seed', rnd['seed'],
                             'None or an int >= 0')
    if 'deterministic' in rnd and not isinstance(rnd['deterministic'],
                                                 bool):
        raise PADConfigError('randomness.deterministic',
                             rnd['deterministic'], 'True or False')
    launcher = cfg.get('launcher', 'none')
    if launcher not in LAUNCHERS:
        raise PADConfigError('--launcher', launcher,
                             f'one of {list(LAUNCHERS)}')
    if launcher == 'pytorch':
        missing = [v for v in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR',
                               'MASTER_PORT') if v not in os.environ]
        if missing:
            raise PADConfigError(
                '--launcher', launcher, "'pytorch' only under "
                'torch.distributed.run (tools/dist_train.sh sets it up)',
                f'environment variables {missing} are not set')


def validate_work_dir(work_dir: Any, field: str = '--work-dir') -> None:
    """A work dir must be a path that is a directory or can become one."""
    if not isinstance(work_dir, str) or not work_dir:
        raise PADConfigError(field, work_dir, 'a directory path')
    if osp.exists(work_dir) and not osp.isdir(work_dir):
        raise PADConfigFileError(field, work_dir,
                                 'a directory (or a path to create)',
                                 'exists and is not a directory')


def validate_cfg_options(cfg, options: dict | None) -> None:
    """``--cfg-options key=value``: every key checked against the assembled
    config, a near miss named with the closest existing key
    (:func:`pad_mm.apis.cfg_keys.check_cfg_keys`)."""
    root = cfg._cfg_dict if hasattr(cfg, '_cfg_dict') else cfg
    check_cfg_keys(root, options, PADConfigError)


def validate_config(cfg, mode: str = 'train', dry_run: bool = True) -> None:
    """Check a fully assembled config before a Runner is built.

    Args:
        cfg: the mmengine ``Config`` (CLI options already merged).
        mode: ``'train'`` or ``'test'`` (which data loaders and fields).
        dry_run: build the model and run one forward pass.

    Raises:
        PADConfigError: naming the field, the value and what is allowed.
    """
    if mode not in ('train', 'test'):
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    scope = cfg.get('default_scope')
    if scope not in TASK_SCOPES:
        raise PADConfigError('default_scope', scope,
                             f'one of {list(TASK_SCOPES)} (it selects the '
                             'task)')
    if cfg.get('work_dir') is not None:
        validate_work_dir(cfg.work_dir, 'work_dir')
    if not isinstance(cfg.get('model'), dict):
        raise PADConfigError('model', cfg.get('model'), 'a model config')
    from pad_mm.utils import register_config
    register_config(cfg)  # pad_mm's classes for the config's task
    init_default_scope(scope)
    state = get_rng_state()  # building models below draws random numbers
    try:
        _validate(cfg, mode, dry_run)
    finally:
        set_rng_state(state)


def _validate(cfg, mode: str, dry_run: bool) -> None:
    _check_runtime(cfg, mode)
    _check_hooks(cfg)
    _check_checkpoints(cfg, mode)
    loaders = ('train_dataloader', 'val_dataloader') if mode == 'train' \
        else ('test_dataloader', )
    for name in loaders:
        if cfg.get(name) is not None:
            check_loader(name, cfg[name])
    _check_pad_model(cfg.model)
    if dry_run:
        _dry_run(cfg, mode)
