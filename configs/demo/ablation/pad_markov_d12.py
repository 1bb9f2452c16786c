# PAD, Markov aggregation, with only the dilation options (1, 2).
_base_ = ['../pad_deeplabv3plus_r18_textures.py']

model = dict(backbone=dict(pad_cfg=dict(dilations=(1, 2))))
