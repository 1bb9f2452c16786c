# PAD, gated aggregation (eqs. 4-5), options (1, 2, 4), the default f
# (ScaledTanh, as for Markov).
_base_ = ['../pad_deeplabv3plus_r18_textures.py']

model = dict(backbone=dict(pad_cfg=dict(aggregation='gated')))
