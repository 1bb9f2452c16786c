from .textures import (TEXTURE_CLASSES, ensure_textures_dataset,
                       make_textures_dataset, render_textures_sample)
from .textures_dataset import PADTexturesDataset

__all__ = [
    'TEXTURE_CLASSES', 'ensure_textures_dataset', 'make_textures_dataset',
    'render_textures_sample', 'PADTexturesDataset'
]
