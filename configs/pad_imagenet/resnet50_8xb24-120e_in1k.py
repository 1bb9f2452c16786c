# ResNet-50, ILSVRC-2012: the regular baseline of Table 6 / Table 9.
# Recipe (Table 9): the DRN ImageNet scheme (SGD lr 0.1, momentum 0.9,
# weight decay 1e-4, lr x0.1 every 30 epochs) with batch size 192
# (8 GPUs x 24) and 120 epochs. mmpretrain's ResNet-50 config has this
# scheme (steps at 30, 60, 90); delta: batch size, epochs, lr-scaling base.
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py']
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)

train_dataloader = dict(batch_size=24)
val_dataloader = dict(batch_size=24)
test_dataloader = dict(batch_size=24)
train_cfg = dict(max_epochs=120)
auto_scale_lr = dict(base_batch_size=192)
