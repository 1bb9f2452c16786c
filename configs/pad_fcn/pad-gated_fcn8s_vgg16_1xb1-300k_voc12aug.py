# Table 2 (pattern aggregation study): PAD-VGG-16 FCN-8s, conv5-1..conv5-3
# chained by Gated aggregation (eq. 4-5), dilation options (1, 2, 4).
_base_ = ['./pad_fcn8s_vgg16_1xb1-300k_voc12aug.py']

# f of eqs. 3-4 is non-linear ("f is a non-linear activation function"):
# tanh, bounded and zero-centred, keeps h from growing along the chain; the
# initial margin of the native dilation (1.5 after tanh) leaves a fresh model
# equal to the vanilla one in hard eval.
model = dict(
    backbone=dict(
        pad_cfg=dict(
            aggregation='gated', act_cfg=dict(type='Tanh'), init_margin=1.5)))
