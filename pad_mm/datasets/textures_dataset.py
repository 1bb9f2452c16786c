"""mmseg dataset class for the generated PAD-Textures set."""
from __future__ import annotations

from pad_mm.registry import DATASETS

from .generated_dataset import GeneratedSegDataset
from .textures import TEXTURE_CLASSES, ensure_textures_dataset

__all__ = ['PADTexturesDataset']


@DATASETS.register_module(task='seg')
class PADTexturesDataset(GeneratedSegDataset):
    """PAD-Textures (see :mod:`pad_mm.datasets.textures`).

    Args:
        generate: parameters of :func:`ensure_textures_dataset` (``seed``,
            ``num_train``, ``num_val``, ``size``); the set is written under
            ``data_root`` when it is absent or was made with other
            parameters. ``None`` reads ``data_root`` as it is.
        **kwargs: as ``BaseSegDataset`` (``data_root``, ``data_prefix``,
            ``pipeline``, ...).
    """
    METAINFO = dict(
        classes=TEXTURE_CLASSES,
        palette=[[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                 [245, 130, 48]])
    generator = staticmethod(ensure_textures_dataset)
