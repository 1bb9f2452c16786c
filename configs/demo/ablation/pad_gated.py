# PAD, gated aggregation (eq. 5), options (1, 2, 4). f = tanh: the paper's
# f is non-linear (the Markov demo uses the identity).
_base_ = ['../pad_deeplabv3plus_r18_textures.py']

model = dict(
    backbone=dict(
        pad_cfg=dict(aggregation='gated', act_cfg=dict(type='Tanh'))))
