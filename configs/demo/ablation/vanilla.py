# Ablation control 1: vanilla DeepLabV3+ R18 (every layer4 3x3 conv at
# d = 1): the demo baseline itself, unchanged.
_base_ = ['../deeplabv3plus_r18_textures.py']
