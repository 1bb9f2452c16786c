# PAD, Markov aggregation, with only the dilation options (1, 2).
_base_ = ['../pad_fcn_patchnet_evidence.py']

model = dict(backbone=dict(pad_cfg=dict(dilations=(1, 2))))
