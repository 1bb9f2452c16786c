# PAD-Xception-65 + DeepLabV3+ (Table 5 (Cityscapes val)): the stride-1
# depthwise 3x3 convs of the middle flow (blocks 3-18) and exit flow (blocks
# 19-20) are PAD layers, dilation options (1, 2, 4) x their own dilation,
# Markov aggregation (Table 8); 54 layers. Entry-flow convs stay regular.
_base_ = ['./deeplabv3plus_xception65-d16_4xb2-80k_cityscapes-512x1024.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='Xception65',
        pad_cfg=dict(
            layers=[
                'blocks.[3-9].stack.conv?.conv_dw',  # middle flow
                'blocks.1[0-8].stack.conv?.conv_dw',  # middle flow
                'blocks.19.stack.conv?.conv_dw',  # exit flow
                'blocks.20.stack.conv?.conv_dw',  # exit flow
            ],
            dilations=(1, 2, 4),
            aggregation='markov')))
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.2)
]
