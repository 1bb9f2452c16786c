# PAD-MobileNetV2 + DeepLabV3+ (Table 5): the stride-1 depthwise 3x3 convs
# of the blocks with 160 (layer6.0-2) and 320 (layer7.0) output channels are
# PAD layers, dilation options (1, 2, 4) x their own dilation, Markov
# aggregation (Table 8).
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
