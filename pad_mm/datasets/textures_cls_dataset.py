"""mmpretrain dataset class for the generated PAD-Textures-Cls set."""
from __future__ import annotations

from mmpretrain.datasets import CustomDataset

from pad_mm.registry import DATASETS

from .generated import generate_on_first_use
from .textures_cls import TEXTURE_CLS_CLASSES, ensure_textures_cls_dataset

__all__ = ['PADTexturesClsDataset']


@DATASETS.register_module(task='cls')
class PADTexturesClsDataset(CustomDataset):
    """PAD-Textures-Cls (see :mod:`pad_mm.datasets.textures_cls`):
    mmpretrain's ``CustomDataset`` on the folder layout
    ``data_root/<data_prefix>/<class>/*.png``, written on first use.

    The files are a plain ``CustomDataset`` folder set: once written,
    ``dict(type='CustomDataset', data_root=..., data_prefix='train')`` reads
    the same samples with the same class indices.

    Args:
        generate: parameters of :func:`ensure_textures_cls_dataset`
            (``seed``, ``num_train``, ``num_val``, ``size``,
            ``max_regions``, ``min_share``); the set is written under
            ``data_root`` when it is absent or was made with other
            parameters. ``None`` reads ``data_root`` as it is.
        **kwargs: as ``CustomDataset`` (``data_root``, ``data_prefix``:
            ``'train'`` or ``'val'``, ``pipeline``, ...).
    """
    METAINFO = dict(classes=TEXTURE_CLS_CLASSES)

    def __init__(self, generate: dict | None = None, **kwargs) -> None:
        generate_on_first_use('PADTexturesClsDataset',
                              kwargs.get('data_root'), generate,
                              ensure_textures_cls_dataset)
        super().__init__(**kwargs)
