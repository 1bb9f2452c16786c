# MobileNetV2 + DeepLabV3+, output stride 16: the regular MobileNetV2 row of
# Table 5 (Cityscapes val). Table 8: DeepLab scheme, batch 8, output stride
# 16, no BN fine-tuning, multi-scale testing (mmseg's tta_pipeline).
# Delta to the ResNet-101 config: the backbone (mmseg's MobileNetV2 with the
# stride-16 settings: the first block of the 160- and of the 320-channel
# stage is dilated by 2, mmseg's MobileNetV2 dilates only a stage's first
# block).
_base_ = ['./deeplabv3plus_r101-d16_4xb2-80k_cityscapes-512x1024.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        widen_factor=1.,
        strides=(1, 2, 2, 2, 1, 1, 1),
        dilations=(1, 1, 1, 1, 1, 2, 2),
        out_indices=(1, 2, 4, 6),
        norm_cfg=dict(type='SyncBN', requires_grad=False),
        norm_eval=True,
        # mmpretrain's ImageNet MobileNetV2 1.0
        # (mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth)
        init_cfg=dict(
            type='CheckedPretrained',
            checkpoint='pretrain/mobilenet_v2.pth',
            prefix='backbone.')),
    decode_head=dict(in_channels=320, c1_in_channels=24))
