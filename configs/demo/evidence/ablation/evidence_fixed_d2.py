# Control 2: the three 3x3 convs of the backbone (convs.{0,1,2}.conv, the
# convs the PAD configs make adaptive) are plain convs with dilation 2 and
# padding 2; nothing else differs from the vanilla model.
_base_ = ['../fcn_patchnet_evidence.py']

model = dict(backbone=dict(dilation=2))
