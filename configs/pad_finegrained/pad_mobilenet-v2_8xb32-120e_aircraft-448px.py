# PAD-MobileNetV2 on FGVC-Aircraft, crop 448 (Table 7 / Table 10): the PAD
# placement and its ImageNet checkpoint are in
# _base_/models/pad_mobilenet-v2.py.
_base_ = [
    './_base_/models/pad_mobilenet-v2.py',
    './_base_/datasets/aircraft_bs32_448px.py',
    './_base_/schedules/finetune_sgd-120e.py',
    'mmpretrain::_base_/default_runtime.py'
]

model = dict(head=dict(num_classes=100))
