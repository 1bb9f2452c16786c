# DRN-C-26 (Yu et al. 2017), ILSVRC-2012: the regular baseline of Table 6 /
# Table 9. Recipe: the original DRN scheme (SGD lr 0.1, momentum 0.9,
# weight decay 1e-4, lr x0.1 every 30 epochs, RandomResizedCrop 224 +
# flip; test resize 256 + center crop 224) with batch size 192 (8 GPUs x 24)
# and 120 epochs. mmpretrain's ResNet-50 ImageNet config has exactly this
# scheme; the delta is the backbone (DRN-C-26 of pad_mm, output stride 8,
# layer8 output), its 512-channel classifier, batch size and epochs.
# The reference classifier (global average pool + 1x1 conv fc) equals
# GlobalAveragePooling + LinearClsHead.
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py']
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True, type='DRN', arch='C-26', out_indices=(7, )),
    head=dict(in_channels=512))
train_dataloader = dict(batch_size=24)
val_dataloader = dict(batch_size=24)
test_dataloader = dict(batch_size=24)
train_cfg = dict(max_epochs=120)
auto_scale_lr = dict(base_batch_size=192)
