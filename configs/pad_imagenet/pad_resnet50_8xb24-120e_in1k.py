# PAD-ResNet-50, ILSVRC-2012 (Table 6 / Table 9): the 3x3 convs of the last
# three bottlenecks of layer2 (layer2.1/2/3.conv2) become PAD layers,
# dilation options (1, 2, 4), Markov aggregation. Same recipe.
_base_ = ['./resnet50_8xb24-120e_in1k.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='ResNet',
        pad_cfg=dict(
            layers=['layer2.1.conv2', 'layer2.2.conv2', 'layer2.3.conv2'],
            dilations=(1, 2, 4),
            aggregation='markov')))
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.1)
]
