# ResNet-50 on FGVC-Aircraft, crop 224: the regular model of Table 7 / Table
# 10, fine-tuned from the ImageNet checkpoint of
# configs/pad_imagenet/resnet50_8xb24-120e_in1k.py, expected at the path
# below (training stops with a FileNotFoundError naming it if it is
# missing).
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    './_base_/datasets/aircraft_bs32_224px.py',
    './_base_/schedules/finetune_sgd-120e.py',
    'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='CheckedPretrained',
            checkpoint='checkpoints/imagenet/resnet50_8xb24-120e_in1k.pth',
            prefix='backbone.')),
    head=dict(num_classes=100))
