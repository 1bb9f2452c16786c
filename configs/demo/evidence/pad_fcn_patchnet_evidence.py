# PAD model of the evidence setting: the three 3x3 convs
# (convs.{0,1,2}.conv) of ./fcn_patchnet_evidence.py become PAD layers
# with dilation options (1, 2, 4) (Markov aggregation, every prior
# setting at its default); tau is annealed.
# The agreement of each layer's hard choice with the right dilation is
# reported at validation (pad/<layer>/agree, against agree_const).
_base_ = ['./fcn_patchnet_evidence.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='PatchConvNet',
        pad_cfg=dict(
            layers=['convs.*.conv'],
            dilations=(1, 2, 4),
            aggregation='markov')))
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='PADEvidenceMetric'),
    dict(type='PADChoiceAgreementMetric')
]
test_evaluator = val_evaluator
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.2),
    dict(type='PADDilationStatsHook'),
    dict(type='PADDilationMapHook', indices=[0, 1]),
]
