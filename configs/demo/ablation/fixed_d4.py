# Ablation control: every 3x3 conv of layer4 (layer4.{0,1}.conv{1,2}, the
# convs the PAD demo makes adaptive) is a plain conv with dilation 4 and
# padding 4; nothing else differs from the vanilla demo. (mmseg's
# ResNet(dilations=...) would dilate only conv1 of each BasicBlock.)
_base_ = ['../deeplabv3plus_r18_textures.py']

model = dict(
    backbone=dict(
        type='FixedDilationBackbone',
        base_type='ResNetV1c',
        layers=['layer4.*.conv1', 'layer4.*.conv2'],
        dilation=4))
