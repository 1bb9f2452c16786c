# FGVC-Aircraft, crop 448: the 224 data config with the DLA recipe's crops
# doubled: RandomResizedCrop(448) + horizontal flip for training; resize the
# short edge to 512 (= 448 * 256 / 224) and center-crop 448 for testing.
_base_ = ['./aircraft_bs32_224px.py']

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=448),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=512, edge='short'),
    dict(type='CenterCrop', crop_size=448),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
