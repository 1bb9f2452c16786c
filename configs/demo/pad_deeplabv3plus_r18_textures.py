# PAD DeepLabV3+ ResNet-18 V1c on PAD-Textures: the main job.
# Delta to the vanilla demo: the 3x3 convs of layer4 become PAD layers with
# dilation options (1, 2, 4) and Markov aggregation; tau is annealed.
_base_ = ['./deeplabv3plus_r18_textures.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='ResNetV1c',
        pad_cfg=dict(
            layers=['layer4.*.conv1', 'layer4.*.conv2'],
            dilations=(1, 2, 4),
            aggregation='markov')))
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.2),
    # after each validation: PAD dilation statistics next to mIoU (log,
    # vis_data/scalars.json) and their histogram picture, and the dilation
    # maps of validation images 0 and 1 (vis_data/vis_image/)
    dict(type='PADDilationStatsHook'),
    dict(type='PADDilationMapHook', indices=[0, 1]),
]
