"""ImageNet-pretrained checkpoints for the model zoo.

The segmentation and classification configs give every backbone the usual
``init_cfg=dict(type='Pretrained', checkpoint='pretrain/<file>.pth')``.
Nothing is downloaded: the file must be on disk. When it is not, training
stops before the first iteration (the runner initialises weights in
``Runner.train()`` before the loop) with a ``FileNotFoundError`` that names
the module, the file and the ways out, instead of mmengine's bare
``'<file> can not be found.'`` from deep inside the checkpoint loader:

* pad_mm's own backbones (``VGG``, ``Xception65``) load through
  :func:`load_pretrained`, which also maps their usual checkpoint formats;
* stock backbones (mmseg's ``ResNetV1c``, ``MobileNetV2``, mmpretrain's
  ``ResNet``, ...) load through mmengine's ``PretrainedInit``; this module
  registers, in mmseg's and mmpretrain's ``WEIGHT_INITIALIZERS`` only, a
  ``'Pretrained'`` initializer that behaves exactly like it (same
  arguments, same loading) after the same check.
  URLs (``scheme://...``) pass unchanged.
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Callable

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit
from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict
from mmpretrain.registry import WEIGHT_INITIALIZERS as CLS_WEIGHT_INITIALIZERS
from mmseg.registry import WEIGHT_INITIALIZERS as SEG_WEIGHT_INITIALIZERS

__all__ = ['pretrained_checkpoint', 'load_pretrained',
           'check_pretrained_file', 'CheckedPretrainedInit']


def check_pretrained_file(checkpoint: object, owner: str,
                          expected: str | None = None) -> None:
    """Raise a clear error when ``checkpoint`` is not an existing local
    file (URLs are accepted as they are).

    Raises:
        ValueError: ``checkpoint`` is not a non-empty string.
        FileNotFoundError: ``checkpoint`` is a local path with no file.
    """
    if not isinstance(checkpoint, str) or not checkpoint:
        raise ValueError(f"{owner}: init_cfg=dict(type='Pretrained') needs "
                         "'checkpoint': a file path or URL, got "
                         f'{checkpoint!r}')
    if '://' in checkpoint or osp.isfile(osp.expanduser(checkpoint)):
        return
    what = f' Expected {expected}.' if expected else ''
    raise FileNotFoundError(
        f"{owner}: init_cfg=dict(type='Pretrained') checkpoint "
        f'{checkpoint!r} does not exist (working directory '
        f'{osp.abspath(".")!r}); nothing is downloaded.{what} Training '
        'stops before the first iteration. The README.md of each config '
        'folder (configs/pad_fcn, configs/pad_deeplabv3plus, '
        'configs/pad_imagenet, configs/pad_finegrained) lists the expected '
        'files and where they come from: put the file there, choose another '
        'with --cfg-options model.backbone.init_cfg.checkpoint=PATH, or '
        'train from scratch with --cfg-options model.backbone.init_cfg=None')


class CheckedPretrainedInit(PretrainedInit):
    """mmengine's ``PretrainedInit`` (``checkpoint``, ``prefix``,
    ``map_location``) that checks a local checkpoint path first.

    Registered as ``'Pretrained'`` in the mmseg and mmpretrain
    ``WEIGHT_INITIALIZERS`` (not in mmengine's root registry), so every
    config of those scopes gets the check."""

    def __call__(self, module: nn.Module) -> None:
        check_pretrained_file(self.checkpoint, type(module).__name__)
        super().__call__(module)


SEG_WEIGHT_INITIALIZERS.register_module('Pretrained',
                                        module=CheckedPretrainedInit)
CLS_WEIGHT_INITIALIZERS.register_module('Pretrained',
                                        module=CheckedPretrainedInit)


def pretrained_checkpoint(init_cfg: dict | list | None) -> dict | None:
    """The ``type='Pretrained'`` entry of ``init_cfg`` (or None)."""
    cfgs = init_cfg if isinstance(init_cfg, list) else [init_cfg]
    for cfg in cfgs:
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            if not isinstance(cfg.get('checkpoint'), str):
                raise ValueError("init_cfg=dict(type='Pretrained') needs "
                                 "'checkpoint': the path of the file, got "
                                 f"{cfg.get('checkpoint')!r}")
            return cfg
    return None


def load_pretrained(module: nn.Module, cfg: dict, expected: str,
                    convert: Callable[[dict], dict]) -> None:
    """Load ``cfg['checkpoint']`` into ``module`` after ``convert``.

    Args:
        module: the backbone.
        cfg: the ``type='Pretrained'`` init_cfg (``checkpoint``, optional
            ``prefix`` such as ``'backbone.'``).
        expected: human description of the expected file, used in the error.
        convert: maps the loaded state dict to ``module``'s key layout.

    Raises:
        FileNotFoundError: the checkpoint file does not exist (no download
            is attempted for local paths).
    """
    path = cfg['checkpoint']
    check_pretrained_file(path, type(module).__name__, expected)
    ckpt = _load_checkpoint(path, map_location='cpu', logger='current')
    state = ckpt.get('state_dict', ckpt.get('model', ckpt)) \
        if isinstance(ckpt, dict) else ckpt
    prefix = cfg.get('prefix')
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items()
                 if k.startswith(prefix)}
    state = {k[7:] if k.startswith('module.') else k: v
             for k, v in state.items()}
    state = convert(dict(state))
    print_log(f'{type(module).__name__}: load ImageNet weights from {path}',
              logger='current')
    load_state_dict(module, state, strict=False, logger='current')
