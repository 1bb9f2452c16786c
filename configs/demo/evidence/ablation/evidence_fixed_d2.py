# Control 2: every 3x3 conv of layer1 (layer1.{0,1}.conv{1,2}, the convs
# the PAD configs make adaptive) is a plain conv with dilation 2 and
# padding 2; nothing else differs from the vanilla model.
_base_ = ['../_base_/fcn_r18_evidence.py']

model = dict(
    backbone=dict(
        type='FixedDilationBackbone',
        base_type='ResNetV1c',
        layers=['layer1.*.conv1', 'layer1.*.conv2'],
        dilation=2))
