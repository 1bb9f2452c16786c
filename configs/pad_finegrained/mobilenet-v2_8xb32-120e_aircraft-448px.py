# MobileNetV2 on FGVC-Aircraft, crop 448: the regular model of Table 7 /
# Table 10, fine-tuned from the ImageNet checkpoint of
# configs/pad_imagenet/mobilenet-v2_8xb32-300e_in1k.py, expected at the path
# below (training stops with a FileNotFoundError naming it if it is
# missing).
_base_ = [
    'mmpretrain::_base_/models/mobilenet_v2_1x.py',
    './_base_/datasets/aircraft_bs32_448px.py',
    './_base_/schedules/finetune_sgd-120e.py',
    'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='CheckedPretrained',
            checkpoint='checkpoints/imagenet/mobilenet-v2_8xb32-300e_in1k.pth',
            prefix='backbone.')),
    head=dict(num_classes=100))
