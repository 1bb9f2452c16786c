# MobileNetV2 on Stanford Cars, crop 448: the regular model of Table 7 / Table
# 10 (its ImageNet checkpoint: _base_/models/mobilenet-v2.py).
_base_ = [
    './_base_/models/mobilenet-v2.py',
    './_base_/datasets/stanfordcars_bs32_448px.py',
    './_base_/schedules/finetune_sgd-120e.py',
    'mmpretrain::_base_/default_runtime.py'
]

model = dict(head=dict(num_classes=196))
