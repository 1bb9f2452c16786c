# Aligned Xception-65 + DeepLabV3+, output stride 16: the regular Xception row
# of Table 5 (Cityscapes val). Table 8: DeepLab scheme, batch 8, output stride
# 16, no BN fine-tuning (backbone BN frozen), multi-scale testing (the
# tta_model and tta_pipeline inherited from mmseg's dataset config: scales
# 0.5-1.75 + flip). Delta to the ResNet-101 config: the backbone and its input
# normalisation.
_base_ = ['./deeplabv3plus_r101-d16_4xb2-80k_cityscapes-512x1024.py']

model = dict(
    # the TF / timm Xception weights expect inputs scaled to [-1, 1]
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5],
                           std=[127.5, 127.5, 127.5]),
    backbone=dict(
        _delete_=True,
        type='Xception65',
        output_stride=16,
        out_indices=(0, 1, 2, 3),  # low-level (256 ch, 1/4), ..., exit flow
        norm_cfg=dict(type='SyncBN', eps=1e-3, requires_grad=False),
        norm_eval=True,
        # timm's xception65.tf_in1k ImageNet weights (TF DeepLab port)
        init_cfg=dict(type='CheckedPretrained',
                      checkpoint='pretrain/xception65.pth')),
    decode_head=dict(in_channels=2048, c1_in_channels=256))
