# PAD-DRN-C-26 (Table 7 / Table 10): layer7 and layer8
# (layer7/8.0.conv1/conv2) become PAD layers, dilation options (1, 2, 3),
# Markov aggregation; initialised from the PAD ImageNet checkpoint of
# configs/pad_imagenet/pad_drn-c-26_8xb24-120e_in1k.py (the regular ImageNet
# checkpoint loads as well: only the priors then start from their init).
_base_ = ['./drn-c-26.py']

model = dict(
    backbone=dict(
        type='PADBackbone',
        base_type='DRN',
        pad_cfg=dict(
            layers=['layer7.*.conv?', 'layer8.*.conv?'],
            dilations=(1, 2, 3),
            aggregation='markov',
            # the ImageNet PAD priors were trained for (1, 2, 4): keep the
            # conv weights, re-initialise those priors (one log line each)
            reinit_priors_on_mismatch=True),
        init_cfg=dict(
            checkpoint='checkpoints/imagenet/pad_drn-c-26_8xb24-120e_in1k.pth')))  # noqa: E501
custom_hooks = [
    dict(type='PADTauHook', schedule='exp', tau_start=1.0, tau_end=0.1)
]
