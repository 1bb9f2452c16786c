# PAD, gated aggregation (eqs. 4-5), options (1, 2, 4), default f.
_base_ = ['../pad_fcn_patchnet_evidence.py']

model = dict(backbone=dict(pad_cfg=dict(aggregation='gated')))
