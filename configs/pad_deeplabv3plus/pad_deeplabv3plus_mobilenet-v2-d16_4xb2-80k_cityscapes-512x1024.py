# PAD-MobileNetV2 + DeepLabV3+ (Table 5): the stride-1 depthwise 3x3 convs
# of the blocks with 160 (layer6.0-2) and 320 (layer7.0) output channels are
# PAD layers with Markov aggregation (Table 8). The options (1, 2, 4) are
# relative to each conv's own dilation, and mmseg dilates only the FIRST
# block of a stage (dilations=(..., 2, 2) below), so the absolute options are
#   layer6.0, layer7.0 (native dilation 2): (2, 4, 8)
#   layer6.1, layer6.2 (native dilation 1): (1, 2, 4)
# (the build log's "PAD conversion" table lists them). For the literal
# (1, 2, 4) everywhere, set dilation_mode='absolute'.
_base_ = ['./deeplabv3plus_mobilenet-v2-d16_4xb2-80k_cityscapes-512x1024.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='MobileNetV2',
        pad_cfg=dict(
            layers=['layer6.*.conv.1.conv', 'layer7.*.conv.1.conv'],
            dilations=(1, 2, 4),
            aggregation='markov')))
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.2)
]
