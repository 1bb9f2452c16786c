# PAD ResNet-18 on PAD-Textures-Cls: the classification demo.
# Delta to the vanilla twin: the last three 3x3 convs of layer2
# (layer2.0.conv2, layer2.1.conv1, layer2.1.conv2; the paper converts the
# last three 3x3 convs of ResNet-50's layer2) become PAD layers with
# dilation options (1, 2, 4) and Markov aggregation; tau is annealed.
_base_ = ['./resnet18_textures_cls.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='ResNet_CIFAR',
        pad_cfg=dict(
            layers=['layer2.0.conv2', 'layer2.1.conv1', 'layer2.1.conv2'],
            dilations=(1, 2, 4),
            aggregation='markov')))
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.2)
]
