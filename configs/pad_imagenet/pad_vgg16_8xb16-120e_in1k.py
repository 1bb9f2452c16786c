# PAD-VGG-16, ILSVRC-2012 (Table 6 / Table 9): only conv5 (conv5_1..conv5_3
# = features.14/15/16 of mmpretrain's VGG) becomes PAD layers, dilation
# options (1, 2, 4), Markov aggregation. Same recipe as the regular model.
_base_ = ['./vgg16_8xb16-120e_in1k.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='VGG',
        pad_cfg=dict(
            layers=['features.14.conv', 'features.15.conv',
                    'features.16.conv'],
            dilations=(1, 2, 4),
            aggregation='markov')))
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.1)
]
