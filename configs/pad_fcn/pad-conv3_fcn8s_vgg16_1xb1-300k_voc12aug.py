# Table 1 (feature level study): PAD-VGG-16 FCN-8s with PAD layers in
# conv3 (every 3x3 conv of the block(s)), dilation options (1, 2, 4),
# Markov aggregation. Delta to the conv5 PAD config: the converted layers.
_base_ = ['./pad_fcn8s_vgg16_1xb1-300k_voc12aug.py']

model = dict(backbone=dict(pad_cfg=dict(layers=['conv3_*'])))
