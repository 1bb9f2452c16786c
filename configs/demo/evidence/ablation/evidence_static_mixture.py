# Control 4: "several dilations, not chosen per pixel": the backbone's
# three 3x3 convs mix dilations (1, 2, 4) with probabilities learned per
# layer, the same at every pixel (aggregation='static'); same tau schedule
# and hard evaluation (argmax of the learned bias) as the PAD configs.
#
# Fair only if its probabilities can move: with Adam a parameter moves by
# at most about lr per step, so over this schedule (2000 poly-decayed steps
# at 2e-3) the bias could move by about 2 in all, no more than the initial
# margin of the favoured d = 1. Its learning rate is therefore 10x (and no
# weight decay): it can cross the margin within a few hundred steps (the
# README reports the learned probabilities).
_base_ = ['../pad_fcn_patchnet_evidence.py']

model = dict(backbone=dict(pad_cfg=dict(aggregation='static')))
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'static_bias': dict(lr_mult=10.0, decay_mult=0.0)}))
