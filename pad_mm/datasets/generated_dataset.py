"""What the mmseg dataset classes of the generated sets (PAD-Textures,
PAD-Evidence) share."""
from __future__ import annotations

from collections.abc import Callable

from mmseg.datasets import BaseSegDataset

from .generated import generate_on_first_use

__all__ = ['GeneratedSegDataset']


class GeneratedSegDataset(BaseSegDataset):
    """A generated set read by mmseg: PNG images and label maps (no label
    reduced), written under ``data_root`` on first use.

    A subclass sets :attr:`generator` and may require folders of
    ``data_prefix`` in :meth:`check_data_prefix`.

    Args:
        generate: parameters of the :attr:`generator`; the set is written
            under ``data_root`` when absent or made with other parameters.
            ``None`` reads ``data_root`` as it is.
        **kwargs: as ``BaseSegDataset``.
    """
    #: ``generator(root, **generate) -> bool``: writes the set under
    #: ``root`` unless one with these parameters is there
    generator: Callable[..., bool]

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 generate: dict | None = None,
                 **kwargs) -> None:
        generate_on_first_use(type(self).__name__, kwargs.get('data_root'),
                              generate, self.generator)
        self.check_data_prefix(kwargs.get('data_prefix') or {})
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=False,
            **kwargs)

    def check_data_prefix(self, prefix: dict) -> None:
        """Raise ValueError if ``prefix`` (the ``data_prefix`` argument)
        lacks a folder the set needs; any will do here."""
