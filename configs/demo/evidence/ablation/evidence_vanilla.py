# Control 1: the backbone's three 3x3 convs at d = 1: the evidence
# setting's vanilla model itself, unchanged.
_base_ = ['../fcn_patchnet_evidence.py']
