# Control 4: "several dilations, not chosen per pixel": layer1's 3x3 convs
# mix dilations (1, 2, 4) with probabilities learned per layer, the same
# at every pixel (aggregation='static'); same tau schedule and hard
# evaluation (argmax of the learned bias) as the PAD configs.
_base_ = ['../pad_fcn_r18_evidence.py']

model = dict(backbone=dict(pad_cfg=dict(aggregation='static')))
