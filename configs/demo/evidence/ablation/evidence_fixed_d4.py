# Control 3: evidence_fixed_d2.py with dilation 4 (and padding 4) in the
# three 3x3 convs of the backbone.
_base_ = ['./evidence_fixed_d2.py']

model = dict(backbone=dict(dilation=4))
