# VGG-16, ILSVRC-2012: the regular baseline of Table 6 / Table 9.
# Recipe (Table 9): PyTorch ImageNet example defaults (SGD, momentum 0.9,
# weight decay 1e-4, lr x0.1 every 30 epochs; lr 0.01 for VGG) with batch
# size 128 (8 GPUs x 16) and 120 epochs. Delta to mmpretrain's VGG-16
# config (which already has lr 0.01, weight decay 1e-4 and steps at 30,
# 60, 90): batch size, epochs, lr-scaling base.
_base_ = ['mmpretrain::vgg/vgg16_8xb32_in1k.py']
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)

train_dataloader = dict(batch_size=16)
val_dataloader = dict(batch_size=16)
test_dataloader = dict(batch_size=16)
train_cfg = dict(max_epochs=120)
auto_scale_lr = dict(base_batch_size=128)
