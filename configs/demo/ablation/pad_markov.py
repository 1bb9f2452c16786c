# PAD, Markov aggregation (eq. 3), options (1, 2, 4): the PAD demo itself.
_base_ = ['../pad_deeplabv3plus_r18_textures.py']
