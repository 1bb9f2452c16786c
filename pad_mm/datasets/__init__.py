from .evidence import (EVIDENCE_CLASSES, EVIDENCE_DILATIONS,
                       ensure_evidence_dataset, evidence_period,
                       make_evidence_dataset, render_evidence_sample)
from .evidence_dataset import PADEvidenceDataset
from .textures import (TEXTURE_CLASSES, ensure_textures_dataset,
                       make_textures_dataset, render_textures_sample)
from .textures_cls import (TEXTURE_CLS_CLASSES, ensure_textures_cls_dataset,
                           make_textures_cls_dataset,
                           render_textures_cls_sample)
from .textures_dataset import PADTexturesDataset

# PADTexturesClsDataset (mmpretrain) is in .textures_cls_dataset, imported
# by pad_mm's registry for classification runs only

__all__ = [
    'TEXTURE_CLASSES', 'ensure_textures_dataset', 'make_textures_dataset',
    'render_textures_sample', 'PADTexturesDataset', 'EVIDENCE_CLASSES',
    'EVIDENCE_DILATIONS', 'ensure_evidence_dataset', 'evidence_period',
    'make_evidence_dataset', 'render_evidence_sample', 'PADEvidenceDataset',
    'TEXTURE_CLS_CLASSES', 'ensure_textures_cls_dataset',
    'make_textures_cls_dataset', 'render_textures_cls_sample'
]
