# PAD-DRN-C-26, ILSVRC-2012 (Table 6 / Table 9): layer8 (its two 3x3 convs
# layer8.0.conv1/conv2) becomes PAD layers, dilation options (1, 2, 4),
# Markov aggregation. Same recipe as the regular model.
_base_ = ['./drn-c-26_8xb24-120e_in1k.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='DRN',
        pad_cfg=dict(
            layers=['layer8.*.conv?'],
            dilations=(1, 2, 4),
            aggregation='markov')))
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.1)
]
