# Control 3: fixed_d2.py with dilation 4 (and padding 4) in every 3x3 conv
# of layer1.
_base_ = ['./evidence_fixed_d2.py']

model = dict(backbone=dict(dilation=4))
