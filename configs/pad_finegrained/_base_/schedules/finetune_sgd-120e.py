# Fine-tuning schedule of Table 10 ("the setting follows that of DLA",
# Yu et al. 2018; ucbdrive/dla classify.py defaults for fine-tuning from
# ImageNet): SGD lr 0.01, momentum 0.9, weight decay 1e-4, lr x0.1 every
# 30 epochs, 120 epochs, batch size 256 (8 GPUs x 32). Delta to
# mmpretrain's ImageNet step schedule: lr and epochs.
_base_ = ['mmpretrain::_base_/schedules/imagenet_bs256.py']

optim_wrapper = dict(optimizer=dict(lr=0.01))
train_cfg = dict(max_epochs=120)
