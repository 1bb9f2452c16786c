# Vanilla ResNet-18 (CIFAR stem) on the generated PAD-Textures-Cls set: the
# baseline of the classification demo. CPU-sized: 32x32 images, narrow
# ResNet-18 (base_channels=16), 5 classes, trained from scratch for 6
# epochs of 2000 images (no pretrained weights here).
# Delta to mmpretrain's CIFAR-10 ResNet-18: data set, width, classes,
# normalisation, batch size, optimizer and schedule.
_base_ = ['mmpretrain::resnet/resnet18_8xb16_cifar10.py']
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)

num_classes = 5
max_epochs = 6
model = dict(
    backbone=dict(base_channels=16),
    head=dict(num_classes=num_classes, in_channels=128))
data_preprocessor = dict(
    num_classes=num_classes, mean=[127.5] * 3, std=[127.5] * 3)

dataset_type = 'PADTexturesClsDataset'
data_root = 'data/pad_textures_cls'
generate = dict(seed=0, num_train=2000, num_val=500, size=32)
train_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
test_pipeline = train_pipeline
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        data_prefix='train',
        generate=generate,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=50,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        data_prefix='val',
        generate=generate,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', by_epoch=True, T_max=max_epochs,
    eta_min=1e-4)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(base_batch_size=32)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
