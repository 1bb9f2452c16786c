# DRN-D-54 + DeepLabV3+, output stride 16: the regular DRN-D-54 row of
# Table 4 (VOC 2012 val). Table 8: DeepLab VOC scheme, batch 8, output
# stride 16. Delta to the ResNet-101 config: the backbone; the low-level
# feature of the decoder is layer3 (256 ch, 1/4), the ASPP input layer8.
_base_ = ['./deeplabv3plus_r101-d16_4xb2-40k_voc12aug-512x512.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='DRN',
        arch='D-54',
        out_indices=(2, 7),  # layer3, layer8
        output_stride=16,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        # the authors' ImageNet DRN-D-54 (drn_d_54-0e0534ff.pth)
        init_cfg=dict(
            type='CheckedPretrained', checkpoint='pretrain/drn_d_54-0e0534ff.pth')),
    decode_head=dict(in_index=1, in_channels=512, c1_in_channels=256))
