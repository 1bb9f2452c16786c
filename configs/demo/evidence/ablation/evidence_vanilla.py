# Control 1: every 3x3 conv of layer1 at d = 1: the evidence setting's
# vanilla model itself, unchanged.
_base_ = ['../_base_/fcn_r18_evidence.py']
