"""Metrics (registered in mmengine's root METRICS, so found from the mmseg
and mmpretrain scopes) and model analysis."""
from .complexity import FlopReport, LayerFlops, count_flops, pad_layer_flops
from .dilation_metric import PADDilationMetric, flatten_dilation_stats
from .evidence import PADChoiceAgreementMetric, PADEvidenceMetric
from .recorder import (PADRecorder, chosen_dilation, expected_dilation,
                       forward_stats, recording,
                       summarize_dilation_stats)

__all__ = [
    'PADDilationMetric', 'flatten_dilation_stats', 'PADRecorder',
    'recording', 'forward_stats', 'summarize_dilation_stats',
    'expected_dilation', 'chosen_dilation', 'count_flops', 'pad_layer_flops',
    'FlopReport', 'LayerFlops', 'PADEvidenceMetric',
    'PADChoiceAgreementMetric'
]
