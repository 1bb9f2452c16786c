# PAD-VGG-16 FCN-8s on VOC 2012 + SBD: conv5-1..conv5-3 are PAD layers with
# dilation options (1, 2, 4) and Markov aggregation (Table 8). Row "conv5"
# of Table 1, "Markov" of Table 2, {1, 2, 4} of Table 3, FCN-8s PAD of
# Table 4. Delta to the vanilla config: the backbone conversion and the tau
# annealing hook.
_base_ = ['./fcn8s_vgg16_1xb1-300k_voc12aug.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='VGG',
        pad_cfg=dict(
            layers=['conv5_*'], dilations=(1, 2, 4), aggregation='markov')))
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.2)
]
