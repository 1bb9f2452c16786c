# PAD-DRN-C-26 on Stanford Cars, crop 224 (Table 7 / Table 10): the PAD
# placement and its ImageNet checkpoint are in _base_/models/pad_drn-c-26.py.
_base_ = [
    './_base_/models/pad_drn-c-26.py',
    './_base_/datasets/stanfordcars_bs32_224px.py',
    './_base_/schedules/finetune_sgd-120e.py',
    'mmpretrain::_base_/default_runtime.py'
]

model = dict(head=dict(num_classes=196))
