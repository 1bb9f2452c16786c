# VGG-16 FCN-8s ("at once") on PASCAL VOC 2012 + SBD (voc12aug): the
# "Backbone" / "VGG-16+FCN-8s REGULAR" row of Tables 1-4.
# Training scheme of FCN (Long et al. 2015) as appendix A, Table 8 asks: whole
# images, batch 1, no augmentation or pre/post-processing, FCN-8s trained at
# once; optimiser Adam (paper, sec. 4.1). mmseg has no VGG FCN, so the model
# is stated here; data, runtime and schedule come from mmseg's base configs.
_base_ = [
    'mmseg::_base_/datasets/pascal_voc12_aug.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py'
]
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)

num_classes = 21
max_iters = 300000
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,  # = the mean pixel after normalisation
    seg_pad_val=255,
    size_divisor=32)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='VGG',
        depth=16,
        out_indices=(2, 3, 5),  # pool3, pool4, fc7
        # torchvision's ImageNet VGG-16 (vgg16-397923af.pth), see README
        init_cfg=dict(
            type='CheckedPretrained', checkpoint='pretrain/vgg16-397923af.pth')),
    decode_head=dict(
        type='FCN8sHead',
        in_channels=(256, 512, 4096),
        in_index=(0, 1, 2),
        skip_scales=(1e-4, 1e-2),  # at once: scale_pool3, scale_pool4
        num_classes=num_classes,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# no augmentation, no resizing: whole images in, full-resolution scores out
# (training and testing read the data the same way)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_pipeline = train_pipeline
dataset_type = 'PascalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
train_dataloader = dict(
    batch_size=1,
    dataset=dict(datasets=[
        dict(
            type=dataset_type,
            data_root=data_root,
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass'),
            ann_file='ImageSets/Segmentation/train.txt',
            pipeline=train_pipeline),
        dict(
            type=dataset_type,
            data_root=data_root,
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
            ann_file='ImageSets/Segmentation/aug.txt',
            pipeline=train_pipeline)
    ]))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# Adam (paper); FCN's per-parameter rules: biases 2x lr, no decay
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=5e-4),
    paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=20000)
default_hooks = dict(checkpoint=dict(interval=20000))
