# Table 3 (dilation boundary study): PAD-VGG-16 FCN-8s, conv5 PAD layers with
# dilation options {1, 2}, Markov aggregation. ({1} is the vanilla
# fcn8s_vgg16_1xb1-300k_voc12aug.py, {1, 2, 4} the conv5 PAD config.)
_base_ = ['./pad_fcn8s_vgg16_1xb1-300k_voc12aug.py']

model = dict(backbone=dict(pad_cfg=dict(dilations=(1, 2))))
