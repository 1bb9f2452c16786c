# DRN-C-26 classifier (pad_mm's DRN backbone, output stride 8, layer8
# output; global average pooling + linear head = the reference avgpool +
# 1x1-conv fc). Delta to mmpretrain's ResNet-50 model: the backbone, its
# 512-channel classifier input, and the ImageNet checkpoint of
# configs/pad_imagenet/drn-c-26_8xb24-120e_in1k.py, expected at the path
# below (training stops with a FileNotFoundError naming it if it is
# missing). The official drn_c_26-ddedf421.pth loads here too (DRN detects
# the key layout; no prefix).
_base_ = ['mmpretrain::_base_/models/resnet50.py']
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True, type='DRN', arch='C-26', out_indices=(7, ),
        init_cfg=dict(
            type='CheckedPretrained',
            checkpoint='checkpoints/imagenet/drn-c-26_8xb24-120e_in1k.pth')),
    head=dict(in_channels=512))
