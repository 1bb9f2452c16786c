# DRN-C-26 classifier (pad_mm's DRN backbone, output stride 8, layer8
# output; global average pooling + linear head = the reference avgpool +
# 1x1-conv fc). Delta to mmpretrain's ResNet-50 model.
_base_ = ['mmpretrain::_base_/models/resnet50.py']

model = dict(
    backbone=dict(_delete_=True, type='DRN', arch='C-26', out_indices=(7, )),
    head=dict(in_channels=512))
