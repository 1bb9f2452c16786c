"""Config preparation shared by ``tools/train.py`` and ``tools/test.py``
(work dir, ``--amp``, CPU distributed launches, default hooks, runner)."""
from __future__ import annotations

import argparse
import logging
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from pad_mm.registry import task_of

from pad_mm.runtime.amp import AMP_DTYPES

__all__ = [
    'LAUNCHERS', 'add_launch_args', 'parse_launch_args', 'apply_amp', 'apply_cpu_distributed',
    'set_work_dir', 'build_runner', 'revert_sync_bn_cfg', 'cpu_amp_cfg',
    'add_default_pad_hooks'
]

#: values of ``--launcher``
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def add_launch_args(parser: argparse.ArgumentParser) -> None:
    """The arguments ``tools/train.py`` and ``tools/test.py`` share with
    mmseg's: ``--cfg-options``, ``--launcher``, ``--local_rank``; and
    ``--debug`` (see :func:`pad_mm.utils.run_tool`)."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=list(LAUNCHERS),
        default='none',
        help='job launcher')
    parser.add_argument(
        '--debug',
        action='store_true',
        help='show the traceback of a config error (by default pad_mm\'s '
        'own config errors print one line)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launch_args(parser: argparse.ArgumentParser,
                      argv: list[str] | None = None) -> argparse.Namespace:
    """Parse, and export ``LOCAL_RANK`` from ``--local_rank`` unless the
    launcher set it."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def set_work_dir(cfg: Config, config_path: str,
                 work_dir: str | None) -> None:
    """CLI > config > ./work_dirs/<config name>."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def apply_amp(cfg: Config, dtype: str = 'float16') -> None:
    """Turn ``optim_wrapper`` into a mixed-precision wrapper (``--amp``).

    With CUDA: mmengine's ``AmpOptimWrapper``. Without: pad_mm's
    ``CPUAmpOptimWrapper`` (CPU autocast; mmengine's wrapper refuses to run
    without a GPU). float16 uses dynamic loss scaling, bfloat16 none.
    A config that already asks for AMP keeps its settings (its wrapper type
    is switched to the one for this machine).
    """
    if dtype not in AMP_DTYPES:
        raise ValueError(f'--amp-dtype must be one of {list(AMP_DTYPES)}, '
                         f'got {dtype!r}')
    amp_type = 'AmpOptimWrapper' if torch.cuda.is_available() else \
        'CPUAmpOptimWrapper'
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper in ('AmpOptimWrapper', 'CPUAmpOptimWrapper'):
        print_log('AMP training is already enabled in your config.',
                  logger='current', level=logging.WARNING)
        cfg.optim_wrapper.type = amp_type
        if cfg.optim_wrapper.get('dtype') is None:
            cfg.optim_wrapper.dtype = dtype
        return
    if wrapper != 'OptimWrapper':
        raise ValueError('--amp needs optim_wrapper.type OptimWrapper or '
                         f'AmpOptimWrapper, got {wrapper!r}')
    cfg.optim_wrapper.type = amp_type
    cfg.optim_wrapper.dtype = dtype
    if dtype == 'float16':
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    else:
        cfg.optim_wrapper.pop('loss_scale', None)


def cpu_amp_cfg(cfg: Config) -> None:
    """Switch a config's ``AmpOptimWrapper`` to ``CPUAmpOptimWrapper`` when
    there is no CUDA (mmengine's refuses the CPU)."""
    wrapper = cfg.get('optim_wrapper') or {}
    if wrapper.get('type') == 'AmpOptimWrapper' and \
            not torch.cuda.is_available():
        wrapper['type'] = 'CPUAmpOptimWrapper'
        if wrapper.get('dtype') is None:  # AmpOptimWrapper's default
            wrapper['dtype'] = 'float16'
        print_log('No CUDA: AmpOptimWrapper -> CPUAmpOptimWrapper (CPU '
                  f"autocast, {wrapper['dtype']}). On a CPU, AMP saves "
                  'memory but not time: an iteration usually takes longer '
                  'than in float32 (the CPU has no fast float16 matrix '
                  'units); drop --amp for speed', logger='current',
                  level=logging.WARNING)


def revert_sync_bn_cfg(node, to: str = 'BN',
                       sources: tuple[str, ...] = ('SyncBN', )):
    """Replace every ``type`` in ``sources`` (default ``'SyncBN'``) in a
    config tree by ``to``; returns the tree (changed in place)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'type' and value in sources:
                node[key] = to
            else:
                revert_sync_bn_cfg(value, to, sources)
    elif isinstance(node, (list, tuple)):
        for value in node:
            revert_sync_bn_cfg(value, to, sources)
    return node


def apply_cpu_distributed(cfg: Config) -> bool:
    """Make a distributed launch work without CUDA: gloo backend, DDP
    without ``device_ids``, and SyncBN replaced by ``CPUSyncBN`` (the same
    global-batch statistics, synchronised over gloo; torch's SyncBatchNorm
    needs a GPU). ``sync_bn='torch'|'mmcv'`` (convert every BN) becomes
    ``CPUSyncBN`` for the BN layers of the model config. Returns whether
    anything was changed."""
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return False
    env = dict(cfg.get('env_cfg') or {})
    env['dist_cfg'] = dict(env.get('dist_cfg') or {}, backend='gloo')
    cfg.env_cfg = env
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    revert_sync_bn_cfg(cfg.model, to='CPUSyncBN')
    if cfg.get('sync_bn'):
        revert_sync_bn_cfg(cfg.model, to='CPUSyncBN',
                           sources=('BN', 'BN2d', 'SyncBN'))
        cfg.sync_bn = None
    print_log('No CUDA: distributed run on the CPU with gloo; SyncBN is '
              'CPUSyncBN (statistics all-reduced over gloo).',
              logger='current')
    return True


DEFAULT_HOOKS = (dict(type='RNGStateHook'), dict(type='PADEvalNumericsHook'))


def add_default_pad_hooks(cfg: Config) -> None:
    """Append pad_mm's always-on hooks (``RNGStateHook``: resumable RNG
    state; ``PADEvalNumericsHook``: a warning per image with NaN/inf at
    val / test) to ``custom_hooks`` unless the config already has them."""
    hooks = list(cfg.get('custom_hooks') or [])
    present = {h.get('type') for h in hooks if isinstance(h, dict)}
    for hook in DEFAULT_HOOKS:
        if hook['type'] not in present:
            hooks.append(dict(hook))
    cfg.custom_hooks = hooks


def build_runner(cfg: Config):
    """Build the runner of the config's scope (``runner_type`` honoured),
    pad_mm registered for its task."""
    from pad_mm.utils import register_config
    task_of(cfg)
    register_config(cfg)
    init_default_scope(cfg.default_scope)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
