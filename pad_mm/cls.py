"""``import pad_mm.cls``: pad_mm for classification (mmpretrain).

What a classification config's ``custom_imports = dict(imports=
['pad_mm.cls'])`` runs: pad_mm's classes become visible from the
``mmpretrain`` scope under their plain names, ``pad_mm::`` config paths
resolve, mmpretrain's ``get_model`` knows pad_mm's models, and the
upstream workarounds apply (see :func:`pad_mm.utils.register_task`).
"""
from pad_mm.utils.setup_env import register_task

register_task('cls')
