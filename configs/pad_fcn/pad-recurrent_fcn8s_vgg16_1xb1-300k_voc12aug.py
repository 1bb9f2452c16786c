# Table 2 (pattern aggregation study): PAD-VGG-16 FCN-8s, conv5-1..conv5-3
# chained by Recurrent aggregation (eq. 3), dilation options (1, 2, 4).
_base_ = ['./pad_fcn8s_vgg16_1xb1-300k_voc12aug.py']

# f: the layer default (ScaledTanh), as for the Markov configs, so the
# aggregations differ only in eqs. 3-5.
model = dict(backbone=dict(pad_cfg=dict(aggregation='recurrent')))
