# PAD-MobileNetV2 (Table 7 / Table 10): the depthwise 3x3 convs of the (t=6,
# c=32, n=3, s=2) stage become PAD layers, dilation options (1, 2, 3), Markov
# aggregation; initialised from the PAD ImageNet checkpoint of
# configs/pad_imagenet/pad_mobilenet-v2_8xb32-300e_in1k.py (the regular
# ImageNet checkpoint loads as well: only the priors then start from their
# init).
_base_ = ['./mobilenet-v2.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='MobileNetV2',
        pad_cfg=dict(
            layers=['layer3.*.conv.1.conv'],
            dilations=(1, 2, 3),
            aggregation='markov',
            # the ImageNet PAD priors were trained for (1, 2, 4): keep the
            # conv weights, re-initialise those priors (one log line each)
            reinit_priors_on_mismatch=True),
        init_cfg=dict(
            checkpoint='checkpoints/imagenet/pad_mobilenet-v2_8xb32-300e_in1k.pth')))  # noqa: E501
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.1)
]
