# ResNet-101 V1c + DeepLabV3+, output stride 16: the regular ResNet-101 row of
# Table 5 (Cityscapes val).
# Appendix A, Table 8: DeepLab training scheme, batch 8 (4 GPUs x 2), output
# stride 16. Delta to mmseg's d8 config: strides/dilations of the backbone
# and ASPP rates for stride 16, no auxiliary head (DeepLabV3+ has none),
# ImageNet weights from a local file (no download), and the lr of DeepLab's
# VOC-2012 scheme (0.007), which Table 8 prescribes for every DeepLabV3+
# model (mmseg's Cityscapes recipe has 0.01).
_base_ = [
    'mmseg::deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py'
]
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)

model = dict(
    pretrained=None,
    backbone=dict(
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 2),
        # mmcv's ImageNet ResNet-101 V1c (resnet101_v1c-e67eebb6.pth)
        init_cfg=dict(
            type='CheckedPretrained', checkpoint='pretrain/resnet101_v1c.pth')),
    decode_head=dict(dilations=(1, 6, 12, 18)),
    auxiliary_head=None)
optim_wrapper = dict(optimizer=dict(lr=0.007))
