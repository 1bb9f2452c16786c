# ResNet-50 classifier (mmpretrain's), fine-tuned from the ImageNet
# checkpoint of configs/pad_imagenet/resnet50_8xb24-120e_in1k.py, expected
# at the path below (training stops with a FileNotFoundError naming it if it
# is missing).
_base_ = ['mmpretrain::_base_/models/resnet50.py']
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)

# zero_init_residual=False: mmpretrain's ResNet skips its zero init of the
# last BN of each block only for an init_cfg named 'Pretrained'; under
# 'CheckedPretrained' it would zero the loaded BN weights after loading.
model = dict(backbone=dict(zero_init_residual=False, init_cfg=dict(
    type='CheckedPretrained', prefix='backbone.',
    checkpoint='checkpoints/imagenet/resnet50_8xb24-120e_in1k.pth')))
