# DRN-C-26 on FGVC-Aircraft, crop 224: the regular model of Table 7 / Table 10
# (its ImageNet checkpoint: _base_/models/drn-c-26.py).
_base_ = [
    './_base_/models/drn-c-26.py', './_base_/datasets/aircraft_bs32_224px.py',
    './_base_/schedules/finetune_sgd-120e.py',
    'mmpretrain::_base_/default_runtime.py'
]

model = dict(head=dict(num_classes=100))
