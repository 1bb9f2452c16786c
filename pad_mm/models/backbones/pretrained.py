"""ImageNet-pretrained checkpoints for the model zoo.

The segmentation and classification configs give every backbone
``init_cfg=dict(type='CheckedPretrained', checkpoint='pretrain/<file>.pth')``.
Nothing is downloaded: the file must be on disk. When it is not, training
stops before the first iteration (the runner initialises weights in
``Runner.train()`` before the loop) with a ``FileNotFoundError`` that names
the module, the file and the ways out, instead of mmengine's bare
``'<file> can not be found.'`` from deep inside the checkpoint loader:

* pad_mm's own backbones (``VGG``, ``Xception65``, ``DRN``) load through
  :func:`load_pretrained` / :func:`read_pretrained_state`, which also map
  their usual checkpoint formats; they accept ``type='Pretrained'`` and
  ``type='CheckedPretrained'`` alike;
* stock backbones (mmseg's ``ResNetV1c``, ``MobileNetV2``, mmpretrain's
  ``ResNet``, ...) load through :class:`CheckedPretrainedInit`, registered
  as ``'CheckedPretrained'`` in mmengine's root ``WEIGHT_INITIALIZERS``
  (seen from every scope). Upstream ``'Pretrained'`` is left untouched.
  URLs (``scheme://...``) pass unchanged.
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Callable

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.model.weight_init import PretrainedInit
from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict

from pad_mm.registry import WEIGHT_INITIALIZERS

__all__ = [
    'pretrained_checkpoint', 'load_pretrained', 'read_pretrained_state',
    'check_pretrained_file', 'CheckedPretrainedInit', 'PRETRAINED_TYPES'
]

#: init_cfg types that load a pretrained checkpoint
PRETRAINED_TYPES = ('Pretrained', 'CheckedPretrained')


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


@WEIGHT_INITIALIZERS.register_module('CheckedPretrained')
class CheckedPretrainedInit(PretrainedInit):
    """mmengine's ``PretrainedInit`` (``checkpoint``, ``prefix``,
    ``map_location``) that checks a local checkpoint path first.

    mmengine's ``BaseModule.init_weights`` runs an init_cfg named
    ``'Pretrained'`` after the children's ``init_weights`` (so the loaded
    weights win); any other name runs before them. To keep that order
    under its own name, this initializer first runs the children's
    ``init_weights`` itself (mmengine then skips them, they are
    initialised), then loads. List it last in an ``init_cfg`` list.

    Backbones that test ``init_cfg['type'] == 'Pretrained'`` themselves
    see another name: mmpretrain's ``ResNet`` then applies
    ``zero_init_residual`` after loading, so configs that load through this
    initializer set ``zero_init_residual=False`` (as upstream does for
    ``'Pretrained'``).
    """

    def __call__(self, module: nn.Module) -> None:
        check_pretrained_file(self.checkpoint, type(module).__name__)
        for child in module.children():
            if is_model_wrapper(child) and not hasattr(child,
                                                       'init_weights'):
                child = child.module
            if hasattr(child, 'init_weights') and not getattr(
                    child, 'is_init', False):
                child.init_weights()
                if not hasattr(type(child), 'is_init'):
                    child.is_init = True  # plain modules (e.g. PADConv2d)
        super().__call__(module)


def pretrained_checkpoint(init_cfg: dict | list | None) -> dict | None:
    """The ``type='Pretrained'``/``'CheckedPretrained'`` entry of
    ``init_cfg`` (or None)."""
    cfgs = init_cfg if isinstance(init_cfg, list) else [init_cfg]
    for cfg in cfgs:
        if isinstance(cfg, dict) and cfg.get('type') in PRETRAINED_TYPES:
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
    state = convert(read_pretrained_state(path, type(module).__name__,
                                          expected, cfg.get('prefix')))
    print_log(f'{type(module).__name__}: load ImageNet weights from {path}',
              logger='current')
    load_state_dict(module, state, strict=False, logger='current')


def read_pretrained_state(path: str, owner: str, expected: str | None = None,
                          prefix: str | None = None,
                          strip_module: bool = True) -> dict:
    """The state dict of a checkpoint file, after the file check.

    Accepts a bare state dict or one under ``'state_dict'``/``'model'``;
    ``prefix`` (e.g. ``'backbone.'``) keeps only the keys under it, without
    it; ``strip_module`` drops a leading ``'module.'`` (DDP checkpoints).

    Raises:
        ValueError: ``path`` is not a non-empty string.
        FileNotFoundError: ``path`` is a local path with no file.
    """
    check_pretrained_file(path, owner, expected)
    ckpt = _load_checkpoint(path, map_location='cpu', logger='current')
    state = ckpt.get('state_dict', ckpt.get('model', ckpt)) \
        if isinstance(ckpt, dict) else ckpt
    if strip_module:
        state = {k[7:] if k.startswith('module.') else k: v
                 for k, v in state.items()}
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items()
                 if k.startswith(prefix)}
    return dict(state)
