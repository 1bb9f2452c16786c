"""The eight sections of the GPU check and their time budgets."""
from __future__ import annotations

from typing import NamedTuple

__all__ = ['Section', 'SECTIONS', 'SECTION_NAMES', 'STATUSES',
           'INJECT_MODES', 'TOTAL_BUDGET_S']


class Section(NamedTuple):
    """``budget_s``: seconds on one H100 (the section's process is killed
    past it); ``smoke_budget_s``: in ``--smoke`` (CPU, interpreter; a
    ceiling for a slow or busy CI machine, a few times what it takes on
    an idle 2-core one)."""
    name: str
    title: str
    budget_s: float
    smoke_budget_s: float


SECTIONS: tuple[Section, ...] = (
    Section('environment', 'versions, device, flags, imports', 10, 300),
    Section('compile', 'parallel warm compile at production '
            "specialisations; cold first-call latency of 'auto'", 55, 600),
    Section('quick_correctness', 'one case per kernel family and dtype, '
            'NaN-filled outputs', 20, 900),
    Section('speed', "cuDNN, forced Triton, reference and 'auto': fwd, "
            'fwd+bwd, hard inference; per-kernel times', 65, 900),
    Section('model', 'DeepLabV3+ ResNet-101 training step, PAD vs vanilla',
            45, 600),
    Section('memory', 'peak memory of a layer, fwd+bwd and hard inference',
            20, 600),
    Section('correctness_matrix', 'dtypes, TF32 flags, AMP, layouts, modes, '
            'shapes, stride, groups, D, k, chunks, slices, N=0, int32 edge',
            40, 1800),
    Section('graphs', 'CUDA-graph capture and torch.compile of a PAD layer',
            30, 900),
)
#: the whole run on one H100, process start-ups included (sum of budgets)
TOTAL_BUDGET_S = 300.0
SECTION_NAMES = tuple(s.name for s in SECTIONS)
#: section statuses: ``passed`` (process exited 0, no case failed),
#: ``failed`` (a case failed or errored, or the process crashed),
#: ``timed_out`` (killed at its budget), ``skipped`` (time limit);
#: case statuses: passed, failed, error, skipped
STATUSES = ('pending', 'running', 'passed', 'failed', 'timed_out',
            'skipped')
#: failure injection, for the tests of the runner: ``error`` (the first
#: case raises), ``crash`` (the process aborts after its first case),
#: ``hang`` (it sleeps after its first case)
INJECT_MODES = ('error', 'crash', 'hang')
