# PAD-VGG-16 FCN-32s on VOC 2012 + SBD (Table 4): conv5-1..conv5-3 are PAD
# layers, dilation options (1, 2, 4), Markov aggregation (Table 8).
_base_ = ['./fcn32s_vgg16_1xb1-100k_voc12aug.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='VGG',
        pad_cfg=dict(
            layers=['conv5_*'], dilations=(1, 2, 4), aggregation='markov')))
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.2)
]
