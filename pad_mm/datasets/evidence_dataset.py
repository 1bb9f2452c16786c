"""mmseg dataset class for the generated PAD-Evidence set."""
from __future__ import annotations

import os.path as osp

from pad_mm.registry import DATASETS

from .evidence import EVIDENCE_CLASSES, ensure_evidence_dataset
from .generated_dataset import GeneratedSegDataset

__all__ = ['PADEvidenceDataset']


@DATASETS.register_module(task='seg')
class PADEvidenceDataset(GeneratedSegDataset):
    """PAD-Evidence (see :mod:`pad_mm.datasets.evidence`): textures whose
    right dilation is known per pixel.

    Each data info also carries ``dil_map_path``, the PNG of the right
    dilation of every pixel (``data_prefix['dil_map_path']``, the same file
    name as the label map). Keep it in the packed samples with
    ``dict(type='PackSegInputs', meta_keys=(..., 'dil_map_path'))`` so that
    :class:`~pad_mm.evaluation.PADEvidenceMetric` and
    :class:`~pad_mm.evaluation.PADChoiceAgreementMetric` can read it.

    Args:
        generate: parameters of :func:`ensure_evidence_dataset`; the set is
            written under ``data_root`` when absent or made with other
            parameters. ``None`` reads ``data_root`` as it is.
        **kwargs: as ``BaseSegDataset`` (``data_root``, ``data_prefix``
            with ``img_path``, ``seg_map_path`` and ``dil_map_path``,
            ``pipeline``, ...).
    """
    METAINFO = dict(
        classes=EVIDENCE_CLASSES,
        palette=[[230, 25, 75], [60, 180, 75], [255, 225, 25],
                 [0, 130, 200]])

    generator = staticmethod(ensure_evidence_dataset)

    def check_data_prefix(self, prefix: dict) -> None:
        """``data_prefix`` must name ``dil_map_path``."""
        if 'dil_map_path' not in prefix:
            raise ValueError(
                'PADEvidenceDataset.data_prefix needs dil_map_path (the '
                "folder of the right-dilation PNGs, e.g. 'dilations/val'), "
                f'got {dict(prefix)!r}')

    def load_data_list(self) -> list[dict]:
        data_list = super().load_data_list()
        dil_dir = self.data_prefix['dil_map_path']
        for info in data_list:
            info['dil_map_path'] = osp.join(
                dil_dir, osp.basename(info['seg_map_path']))
        return data_list
