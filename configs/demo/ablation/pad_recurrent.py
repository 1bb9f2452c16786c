# PAD, recurrent aggregation (eq. 4), options (1, 2, 4). f = tanh: the
# paper's f is non-linear (the Markov demo uses the identity).
_base_ = ['../pad_deeplabv3plus_r18_textures.py']

model = dict(
    backbone=dict(
        pad_cfg=dict(aggregation='recurrent', act_cfg=dict(type='Tanh'))))
