# PAD-MobileNetV2, ILSVRC-2012 (Table 6 / Table 9): the depthwise 3x3 convs
# of the (t=6, c=32, n=3, s=2) stage (mmpretrain's layer3, blocks 0-2,
# conv.1 = the depthwise ConvModule) become PAD layers, dilation options
# (1, 2, 4), Markov aggregation. Same recipe as the regular model.
_base_ = ['./mobilenet-v2_8xb32-300e_in1k.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='MobileNetV2',
        pad_cfg=dict(
            layers=['layer3.*.conv.1.conv'],
            dilations=(1, 2, 4),
            aggregation='markov')))
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.1)
]
