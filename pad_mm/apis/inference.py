"""Load a model from a config + checkpoint and feed it one image, as
mmseg's / mmpretrain's ``init_model`` and ``inference_model`` do, for
segmentation (mmseg) and classification (mmpretrain) configs alike: the
task comes from the config's ``default_scope``.
"""
from __future__ import annotations

import copy
import os.path as osp
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint
from torch import Tensor

from pad_mm.models.layers import pad_layers
from pad_mm.registry import task_of

from .pad_match import check_pad_match, checkpoint_state

__all__ = [
    'load_config', 'load_model', 'init_model', 'test_pipeline_cfg',
    'ImageBatch', 'prepare_sample', 'prepare_image', 'forward_tensor',
    'default_input_shape', 'ComparedModel', 'load_pad_and_baseline'
]


def load_config(config: str | Config) -> Config:
    """A ``Config`` from a path (or the config itself), with pad_mm
    registered for its task (:func:`pad_mm.utils.register_config`).

    Raises:
        FileNotFoundError: no such config file.
    """
    from pad_mm.utils import register_config, register_module2package
    if isinstance(config, Config):
        register_config(config)
        return config
    if not osp.isfile(config):
        raise FileNotFoundError(f'config: no such file {config!r}')
    register_module2package()  # a pad_mm:: base resolves
    cfg = Config.fromfile(config)
    register_config(cfg)  # pad_mm for the config's task
    return cfg


def load_model(config: str | Config,
               checkpoint: str | None = None,
               device: str = 'cpu') -> tuple[nn.Module, Config]:
    """Build ``cfg.model`` in the config's scope, load ``checkpoint`` (if
    given; otherwise the weights are as constructed, ``init_weights`` is
    not run) and return ``(model in eval mode, cfg)``.

    Raises:
        FileNotFoundError: config or checkpoint missing.
        ValueError: ``default_scope`` is not 'mmseg' or 'mmpretrain'.
        PADConfigError: a PAD checkpoint with a vanilla config or the
            reverse (:mod:`pad_mm.apis.pad_match`).
    """
    cfg = load_config(config)
    task_of(cfg)
    init_default_scope(cfg.default_scope)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pop('pretrained', None)
    if cfg.get('data_preprocessor') is not None:  # as mmengine's Runner
        model_cfg.setdefault('data_preprocessor',
                             copy.deepcopy(cfg.data_preprocessor))
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'checkpoint: no such file {checkpoint!r}')
        # no weight download or re-initialisation over the checkpoint
        if isinstance(model_cfg.get('backbone'), dict):
            model_cfg['backbone'].pop('init_cfg', None)
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        layers = [n for n, _ in pad_layers(model)]
        check_pad_match(bool(layers), layers, checkpoint_state(checkpoint),
                        getattr(cfg, 'filename', None) or 'given',
                        checkpoint)
        load_checkpoint(model, checkpoint, map_location='cpu',
                        revise_keys=[(r'^module\.', '')])
    model.cfg = cfg
    return model.to(device).eval(), cfg


class ComparedModel(NamedTuple):
    """One model of a PAD-vs-regular comparison (see
    :func:`load_pad_and_baseline`)."""
    label: str  # 'PAD' or 'regular'
    model: nn.Module  # in eval mode
    cfg: Config
    config: str | Config  # as given
    checkpoint: str | None


def load_pad_and_baseline(config: str | Config,
                          checkpoint: str | None,
                          baseline_config: str | Config | None = None,
                          baseline_checkpoint: str | None = None,
                          device: str = 'cpu') -> list[ComparedModel]:
    """The PAD model (label ``'PAD'``) and, when ``baseline_config`` is
    given, the regular model it is compared with (label ``'regular'``),
    each loaded with :func:`load_model`.

    Raises:
        ValueError: only one of ``baseline_config`` and
            ``baseline_checkpoint`` is given.
        FileNotFoundError: a config or checkpoint is missing.
    """
    if (baseline_config is None) != (baseline_checkpoint is None):
        raise ValueError(
            'baseline_config and baseline_checkpoint go together, got '
            f'baseline_config={baseline_config!r}, baseline_checkpoint='
            f'{baseline_checkpoint!r}')
    model, cfg = load_model(config, checkpoint, device)
    out = [ComparedModel('PAD', model, cfg, config, checkpoint)]
    if baseline_config is not None:
        base, bcfg = load_model(baseline_config, baseline_checkpoint, device)
        out.append(ComparedModel('regular', base, bcfg, baseline_config,
                                 baseline_checkpoint))
    return out


def default_input_shape(cfg: Config) -> tuple[int, int]:
    """``(H, W)`` of the input the tools feed a model when not told: 224 x
    224 for classification (mmpretrain); for segmentation the data
    preprocessor's ``size``, else the config's ``crop_size``, else 512 x
    512."""
    if task_of(cfg) == 'cls':
        return (224, 224)
    size = cfg.model.get('data_preprocessor', {}).get('size') or \
        cfg.get('crop_size')
    return tuple(size) if size else (512, 512)


def test_pipeline_cfg(cfg: Config) -> list[dict]:
    """The config's test pipeline without annotation loading."""
    pipeline = None
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if loader is not None:
        ds = loader.get('dataset', {})
        while pipeline is None and isinstance(ds, dict):
            pipeline = ds.get('pipeline')
            ds = ds.get('dataset')
    if pipeline is None:
        pipeline = cfg.get('test_pipeline')
    if pipeline is None:
        raise ValueError('the config has no test_dataloader.dataset.pipeline '
                         'and no test_pipeline to prepare an image with')
    return [copy.deepcopy(t) for t in pipeline
            if 'Annotation' not in str(t.get('type', ''))]


class ImageBatch:
    """One image through the config's test pipeline and data preprocessor.

    Attributes:
        batch: the collated pipeline output (for ``model.test_step``).
        inputs: [1, 3, H, W] normalised model input.
        image: [H, W, 3] uint8 RGB, the image as the model sees it (after
            resizing / cropping, before normalisation; padding excluded).
    """

    def __init__(self, batch: dict, inputs: Tensor, image: np.ndarray):
        self.batch = batch
        self.inputs = inputs
        self.image = image


def prepare_sample(model: nn.Module, data: dict,
                   device: str = 'cpu') -> ImageBatch:
    """An ``ImageBatch`` from one pipeline output (``dataset[i]``)."""
    batch = pseudo_collate([data])
    raw = batch['inputs'][0]  # [3, H, W] uint8
    # LoadImageFromFile gives BGR (mmcv's convention)
    image = np.ascontiguousarray(
        raw.permute(1, 2, 0).cpu().numpy().astype(np.uint8)[..., ::-1])
    with torch.no_grad():
        inputs = model.data_preprocessor(copy.copy(batch), False)['inputs']
    return ImageBatch(batch, inputs.to(device), image)


def prepare_image(model: nn.Module, cfg: Config, image_path: str,
                  device: str = 'cpu') -> ImageBatch:
    """Run ``image_path`` through the test pipeline and preprocessor."""
    if not osp.isfile(image_path):
        raise FileNotFoundError(f'image: no such file {image_path!r}')
    data = Compose(test_pipeline_cfg(cfg))(dict(img_path=image_path))
    return prepare_sample(model, data, device)


def forward_tensor(model: nn.Module, inputs: Tensor):
    """One whole-image forward of the network (``mode='tensor'``: backbone,
    neck and head, no sliding window or test-time augmentation)."""
    return model(inputs, mode='tensor')


#: mmseg's / mmpretrain's name for :func:`load_model`
init_model = load_model
