# DRN-C-26 on FGVC-Aircraft, crop 448: the regular model of Table 7 / Table
# 10, fine-tuned from the ImageNet checkpoint of
# configs/pad_imagenet/drn-c-26_8xb24-120e_in1k.py, expected at the path
# below (training stops with a FileNotFoundError naming it if it is
# missing). The official drn_c_26-ddedf421.pth loads here too (DRN detects
# the key layout; no prefix).
_base_ = [
    './_base_/models/drn-c-26.py',
    './_base_/datasets/aircraft_bs32_448px.py',
    './_base_/schedules/finetune_sgd-120e.py',
    'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='CheckedPretrained',
            checkpoint='checkpoints/imagenet/drn-c-26_8xb24-120e_in1k.pth')),
    head=dict(num_classes=100))
