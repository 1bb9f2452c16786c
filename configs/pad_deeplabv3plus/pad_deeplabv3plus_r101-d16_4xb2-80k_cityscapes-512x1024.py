# PAD-ResNet-101 + DeepLabV3+, output stride 16 (Table 5 (Cityscapes val)):
# the 3x3 convs of layer4 (layer4.0/1/2.conv2) are PAD layers with dilation
# options (1, 2, 4) x their own dilation and Markov aggregation (Table 8).
_base_ = ['./deeplabv3plus_r101-d16_4xb2-80k_cityscapes-512x1024.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='ResNetV1c',
        pad_cfg=dict(
            layers=['layer4.*.conv2'],
            dilations=(1, 2, 4),
            aggregation='markov')))
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.2)
]
