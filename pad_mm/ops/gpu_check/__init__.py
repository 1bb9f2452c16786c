"""The GPU check (``tools/analysis_tools/gpu_check.py``): correctness,
speed and memory of the PAD kernels on one GPU, in eight sections, each in
its own process with its own time budget (:data:`.plan.SECTIONS`, about
five minutes on one H100 in all):

1. ``environment``: versions, device, TF32 flags, no OpenMMLab imported;
2. ``compile``: every kernel specialisation the later sections launch,
   compiled ahead by parallel worker processes (Triton's on-disk cache),
   then the cold first-call latency of ``auto`` and of forced Triton;
3. ``quick_correctness``: one case per kernel family and dtype, NaN-filled
   outputs, bitwise determinism;
4. ``speed``: cuDNN, forced Triton, reference and ``auto`` for forward,
   forward + backward and hard inference at ResNet-101 layer4 shapes,
   values checked at every shape, per-kernel times, TFLOP/s and GB/s;
5. ``model``: a DeepLabV3+ ResNet-101 training step (plain torch,
   :mod:`.deeplab`), PAD vs vanilla;
6. ``memory``: a layer's peak memory against cuDNN's;
7. ``correctness_matrix``: dtypes, TF32 through both flags, AMP with fp32
   weights, layouts, soft / straight-through / hard, ragged and 16-aligned
   shapes, stride 2, groups, D = 2 / 4, k = 5, a multi-chunk backward,
   sliced inputs, N = 0, the int32 edge;
8. ``graphs``: CUDA-graph capture and ``torch.compile`` of a PAD layer.

The JSON file is rewritten after every case (by the section's process)
and after every section (by :func:`.runner.run_check`): a crash or a kill
loses nothing recorded before it, and the next section still runs. With
``smoke=True`` every section runs at tiny sizes on the CPU in Triton's
interpreter (CI). Imports torch, triton and :mod:`pad_mm.ops` only.
"""
from .plan import (INJECT_MODES, SECTION_NAMES, SECTIONS, STATUSES,
                   TOTAL_BUDGET_S, Section)
from .report import markdown_summary
from .runner import run_check

__all__ = ['run_check', 'markdown_summary', 'SECTIONS', 'SECTION_NAMES',
           'STATUSES', 'INJECT_MODES', 'TOTAL_BUDGET_S', 'Section']
