"""Config preparation shared by ``tools/train.py`` and ``tools/test.py``."""
from __future__ import annotations

import logging
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.logging import print_log

__all__ = [
    'TASK_SCOPES', 'task_of', 'apply_amp', 'apply_cpu_distributed',
    'set_work_dir', 'build_runner', 'revert_sync_bn_cfg'
]

# default_scope -> task
TASK_SCOPES = {'mmseg': 'seg', 'mmpretrain': 'cls'}
AMP_DTYPES = ('float16', 'bfloat16')


def task_of(cfg: Config) -> str:
    """'seg' or 'cls' from the config's ``default_scope``."""
    scope = cfg.get('default_scope')
    if scope not in TASK_SCOPES:
        raise ValueError(f'default_scope must be one of {list(TASK_SCOPES)} '
                         f'(it selects the task), got {scope!r}')
    return TASK_SCOPES[scope]


def set_work_dir(cfg: Config, config_path: str,
                 work_dir: str | None) -> None:
    """CLI > config > ./work_dirs/<config name>."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def apply_amp(cfg: Config, dtype: str = 'float16') -> None:
    """Turn ``optim_wrapper`` into an ``AmpOptimWrapper`` (dynamic loss
    scaling for fp16)."""
    if dtype not in AMP_DTYPES:
        raise ValueError(f'--amp-dtype must be one of {list(AMP_DTYPES)}, '
                         f'got {dtype!r}')
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper == 'AmpOptimWrapper':
        print_log('AMP training is already enabled in your config.',
                  logger='current', level=logging.WARNING)
    elif wrapper != 'OptimWrapper':
        raise ValueError('--amp needs optim_wrapper.type OptimWrapper or '
                         f'AmpOptimWrapper, got {wrapper!r}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.dtype = dtype
    if dtype == 'float16':
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    else:
        cfg.optim_wrapper.pop('loss_scale', None)


def revert_sync_bn_cfg(node):
    """Replace every ``type='SyncBN'`` in a config tree by ``'BN'``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'type' and value == 'SyncBN':
                node[key] = 'BN'
            else:
                revert_sync_bn_cfg(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            revert_sync_bn_cfg(value)
    return node


def apply_cpu_distributed(cfg: Config) -> bool:
    """Make a distributed launch work without CUDA: gloo backend, DDP
    without ``device_ids``, SyncBN replaced by BN (torch's SyncBatchNorm
    needs CUDA). Returns whether anything was changed."""
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return False
    env = dict(cfg.get('env_cfg') or {})
    env['dist_cfg'] = dict(env.get('dist_cfg') or {}, backend='gloo')
    cfg.env_cfg = env
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    revert_sync_bn_cfg(cfg.model)
    print_log('No CUDA: distributed run on the CPU with gloo; SyncBN is '
              'replaced by BN.', logger='current')
    return True


def build_runner(cfg: Config):
    """Build the runner of the config's scope (``runner_type`` honoured)."""
    task_of(cfg)
    from mmengine.registry import RUNNERS, init_default_scope
    from mmengine.runner import Runner
    init_default_scope(cfg.default_scope)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
