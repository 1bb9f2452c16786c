# Ablation control: fixed_d2.py with dilation 4 (and padding 4) in every 3x3
# conv of layer4 (layer4.{0,1}.conv{1,2}); nothing else differs from the
# vanilla demo.
_base_ = ['./fixed_d2.py']

model = dict(backbone=dict(dilation=4))
