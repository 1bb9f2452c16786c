# Vanilla model of the evidence setting (PAD-Evidence, where the right
# dilation of every pixel is known; see README.md here). CPU-sized on
# purpose, and built so that only the convs under test see across map
# pixels: a 4x4 stride-4 patch stem (each map pixel sees its own texture
# cell and nothing else), three residual 3x3 conv blocks on the 32x32 maps
# of 128x128 images (the convs the PAD configs make adaptive), an average
# pool of the blocks' output (7x7, no non-linearity: it pools what the
# blocks detected but detects nothing itself), and a 1x1 FCN head.
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)

crop_size = (128, 128)
num_classes = 4
max_iters = 2000
channels = 32
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='PatchConvNet',
        channels=channels,
        patch_size=4,
        num_convs=3,
        dilation=1,
        pool=3,
        norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=channels,
        in_index=0,
        channels=channels,
        num_convs=0,
        concat_input=False,
        num_classes=num_classes,
        norm_cfg=norm_cfg),
    auxiliary_head=None)

dataset_type = 'PADEvidenceDataset'
data_root = 'data/pad_evidence'
generate = dict(seed=0, num_train=400, num_val=100, size=128, stride=4,
                dilations=[1, 2, 4], texture='pairs', align_cells=True,
                min_regions=3, max_regions=4)
# no flips: a horizontal flip turns one class (direction) into another
meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
             'pad_shape', 'scale_factor', 'flip', 'flip_direction',
             'reduce_zero_label', 'dil_map_path')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=meta_keys)
]
test_pipeline = train_pipeline
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        generate=generate,
        data_prefix=dict(
            img_path='images/train', seg_map_path='annotations/train',
            dil_map_path='dilations/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        generate=generate,
        data_prefix=dict(
            img_path='images/val', seg_map_path='annotations/val',
            dil_map_path='dilations/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# mIoU, and pixel accuracy per true scale (evidence/acc_d1, _d2, _d4)
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='PADEvidenceMetric')
]
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=max_iters,
        max_keep_ckpts=1))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
