# PAD, Markov aggregation (eq. 3 with W_h = 0), options (1, 2, 4), default
# prior settings: the evidence setting's PAD model itself.
_base_ = ['../pad_fcn_patchnet_evidence.py']
