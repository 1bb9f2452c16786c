# Ablation control: "several dilations, not chosen per pixel". The layer4
# 3x3 convs mix dilations (1, 2, 4) with probabilities learned per layer
# but the same at every pixel: the prior is a learned [D] bias with no
# input term (aggregation='static'); training draws one Gumbel-Softmax
# sample per image and layer (same tau schedule as the PAD demo), hard
# evaluation uses the argmax dilation of the bias at every pixel.
_base_ = ['../pad_deeplabv3plus_r18_textures.py']

model = dict(backbone=dict(pad_cfg=dict(aggregation='static')))
