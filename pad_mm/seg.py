"""``import pad_mm.seg``: pad_mm for segmentation (mmseg).

What a segmentation config's ``custom_imports = dict(imports=
['pad_mm.seg'])`` runs: pad_mm's classes become visible from the ``mmseg``
scope under their plain names, ``pad_mm::`` config paths resolve, and the
upstream workarounds apply (see :func:`pad_mm.utils.register_task`).
"""
from pad_mm.utils.setup_env import register_task

register_task('seg')
