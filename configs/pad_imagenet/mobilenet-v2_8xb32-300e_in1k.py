# MobileNetV2 1.0-224, ILSVRC-2012: the regular baseline of Table 6 /
# Table 9. Recipe: the 1.0-224 setting of Sandler et al. (2018) with batch
# size 256 (8 GPUs x 32) and 300 epochs, which is mmpretrain's own
# MobileNetV2 config unchanged (SGD lr 0.045, momentum 0.9, weight decay
# 4e-5, lr x0.98 per epoch).
_base_ = ['mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py']
custom_imports = dict(imports=['pad_mm'], allow_failed_imports=False)
