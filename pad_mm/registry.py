"""Where pad_mm registers what, and why.

pad_mm has no registries of its own: everything goes into an upstream one,
chosen so that a config of either task (``default_scope='mmseg'`` or
``'mmpretrain'``) finds it. A child registry (mmseg's, mmpretrain's) looks
its own names up first, then mmengine's root registry; so a name in the
root is seen from every scope, and a name in a child shadows the root.

==========================  ==================  ==========================
what                        registry            why
==========================  ==================  ==========================
``PADConv`` (conv layer)    root ``MODELS``     built by mmcv's
                                                ``build_conv_layer`` from
                                                any scope, like ``DCNv2``
``PADBackbone`` (builder)   root ``MODELS``     wraps any backbone of
                                                either task
``FixedDilationBackbone``   root ``MODELS``     any backbone of either
(builder)                                       task, chosen convs at a
                                                fixed dilation (ablation)
``CPUSyncBN`` (norm layer)  root ``MODELS``     any task's ``norm_cfg``
``VGG``, ``Xception65``,    mmseg ``MODELS``    segmentation only (the
FCN-skip heads                                  paper's FCN / DeepLab)
``DRN`` (backbone)          mmseg and           used by both the
                            mmpretrain          segmentation and the
                            ``MODELS``          fine-grained configs
hooks                       root ``HOOKS``      task independent
``PADDilationMetric``       root ``METRICS``    both tasks' evaluators
``CPUAmpOptimWrapper``      root                task independent
                            ``OPTIM_WRAPPERS``
``CheckedPretrained``       root ``WEIGHT_      a checked ``Pretrained``
(initializer)               INITIALIZERS``      (clear error for a missing
                                                file) under its own name;
                                                upstream ``'Pretrained'``
                                                is left as it is
``PADTexturesDataset``      mmseg ``DATASETS``  a segmentation data set
figure makers               root ``FUNCTIONS``  the PAD hooks of
(``pad_dilation_histogram``,                    ``engine/`` draw through
``pad_dilation_map_image``)                     them without importing
                                                ``visualization/`` (a
                                                higher layer)
==========================  ==================  ==========================

This module also maps a config's ``default_scope`` to its task
(:func:`task_of`). It imports only the upstream registries, so every layer
of pad_mm may import it.
"""
from __future__ import annotations

from collections.abc import Iterable

from mmengine.registry import (FUNCTIONS, HOOKS, METRICS, MODELS,
                               OPTIM_WRAPPERS, WEIGHT_INITIALIZERS, Registry)
from mmpretrain.registry import MODELS as CLS_MODELS
from mmseg.registry import DATASETS as SEG_DATASETS
from mmseg.registry import MODELS as SEG_MODELS

__all__ = [
    'MODELS', 'SEG_MODELS', 'CLS_MODELS', 'HOOKS', 'METRICS', 'FUNCTIONS',
    'OPTIM_WRAPPERS', 'WEIGHT_INITIALIZERS', 'SEG_DATASETS', 'TASK_SCOPES',
    'task_of', 'register_in'
]

#: default_scope -> task
TASK_SCOPES = {'mmseg': 'seg', 'mmpretrain': 'cls'}


def task_of(cfg) -> str:
    """``'seg'`` or ``'cls'`` from a config's ``default_scope``.

    Raises:
        ValueError: ``default_scope`` is not ``'mmseg'`` or
            ``'mmpretrain'``.
    """
    scope = cfg.get('default_scope')
    if scope not in TASK_SCOPES:
        raise ValueError(f'default_scope must be one of {list(TASK_SCOPES)} '
                         f'(it selects the task), got {scope!r}')
    return TASK_SCOPES[scope]


def register_in(registries: Iterable[Registry], name: str | None = None):
    """Class decorator registering a class in several registries (e.g.
    DRN in mmseg's and mmpretrain's ``MODELS``)."""

    def decorate(cls):
        for registry in registries:
            registry.register_module(name or cls.__name__, module=cls)
        return cls

    return decorate
