"""Metrics (registered in mmengine's root METRICS, so found from the mmseg
and mmpretrain scopes), model analysis, and the statistics, log reading
and summaries of repeated runs (:mod:`.stats`, :mod:`.run_logs`,
:mod:`.sweep_summary`)."""
from .complexity import FlopReport, LayerFlops, count_flops, pad_layer_flops
from .dilation_metric import PADDilationMetric, flatten_dilation_stats
from .evidence import PADChoiceAgreementMetric, PADEvidenceMetric
from .recorder import (PADRecorder, chosen_dilation, expected_dilation,
                       forward_stats, recording,
                       summarize_dilation_stats)
from .stats import mean_std, paired_difference, t_quantile

__all__ = [
    'PADDilationMetric', 'flatten_dilation_stats', 'PADRecorder',
    'recording', 'forward_stats', 'summarize_dilation_stats',
    'expected_dilation', 'chosen_dilation', 'count_flops', 'pad_layer_flops',
    'FlopReport', 'LayerFlops', 't_quantile', 'mean_std', 'paired_difference',
    'PADEvidenceMetric', 'PADChoiceAgreementMetric'
]
