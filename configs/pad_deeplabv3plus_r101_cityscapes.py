# Design-card entry point: PAD-ResNet-101 + DeepLabV3+ on Cityscapes, the
# Table 5 ResNet-101 PAD model (80.7 mIoU in the paper). PAD in the 3x3 convs
# of layer4, dilation options (1, 2, 4), Markov aggregation, output stride 16,
# batch 8. See configs/pad_deeplabv3plus/README.md.
_base_ = [
    './pad_deeplabv3plus/pad_deeplabv3plus_r101-d16_4xb2-80k_cityscapes-512x1024.py'
]
