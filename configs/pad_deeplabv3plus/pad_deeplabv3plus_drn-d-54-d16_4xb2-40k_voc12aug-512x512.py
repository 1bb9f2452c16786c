# PAD-DRN-D-54 + DeepLabV3+ (Table 4): the 3x3 convs of layer7 and layer8
# (layer7.0, layer8.0) are PAD layers with dilation options (1, 2, 4) x their
# own dilation and Markov aggregation (Table 8).
_base_ = ['./deeplabv3plus_drn-d-54-d16_4xb2-40k_voc12aug-512x512.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='DRN',
        pad_cfg=dict(
            layers=['layer7.*', 'layer8.*'],
            dilations=(1, 2, 4),
            aggregation='markov')))
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.2)
]
