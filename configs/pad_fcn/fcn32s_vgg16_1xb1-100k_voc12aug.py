# VGG-16 FCN-32s on VOC 2012 + SBD: the "VGG-16+FCN-32S REGULAR" row of
# Table 4. Delta to FCN-8s: no skips, one fixed 32x bilinear upsampling,
# FCN-32s schedule length.
_base_ = ['./fcn8s_vgg16_1xb1-300k_voc12aug.py']

max_iters = 100000
model = dict(
    backbone=dict(out_indices=(5, )),  # fc7
    decode_head=dict(
        _delete_=True,
        type='FCN32sHead',
        in_channels=(4096, ),
        in_index=(0, ),
        num_classes=21,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=10000)
default_hooks = dict(checkpoint=dict(interval=10000))
