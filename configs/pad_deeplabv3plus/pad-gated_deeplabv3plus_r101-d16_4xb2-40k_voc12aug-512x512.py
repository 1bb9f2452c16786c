# Table 2 (pattern aggregation study): PAD-ResNet-101 + DeepLabV3+ on VOC,
# layer4 3x3 convs chained by Gated aggregation (eq. 4-5), dilation options (1,
# 2, 4).
_base_ = ['./pad_deeplabv3plus_r101-d16_4xb2-40k_voc12aug-512x512.py']

# f of eqs. 3-4 is non-linear ("f is a non-linear activation function"):
# tanh, bounded and zero-centred, keeps h from growing along the chain; the
# initial margin of the native dilation (1.5 after tanh) leaves a fresh model
# equal to the vanilla one in hard eval.
model = dict(
    backbone=dict(
        pad_cfg=dict(
            aggregation='gated', act_cfg=dict(type='Tanh'), init_margin=1.5)))
