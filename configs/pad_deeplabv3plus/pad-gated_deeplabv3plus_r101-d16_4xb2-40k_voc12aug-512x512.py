# Table 2 (pattern aggregation study): PAD-ResNet-101 + DeepLabV3+ on VOC,
# layer4 3x3 convs chained by Gated aggregation (eqs. 4-5), dilation options
# (1, 2, 4).
_base_ = ['./pad_deeplabv3plus_r101-d16_4xb2-40k_voc12aug-512x512.py']

# f: the layer default (ScaledTanh), as for the Markov configs, so the
# aggregations differ only in eqs. 3-5.
model = dict(backbone=dict(pad_cfg=dict(aggregation='gated')))
