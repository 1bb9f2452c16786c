# FGVC-Aircraft (100 variants, trainval 6667 / test 3333), crop 224: the
# shared fine-grained data config read with mmpretrain's own `FGVCAircraft`
# class (data/images/, data/images_variant_*.txt).
_base_ = ['./finegrained_bs32_224px.py']

dataset_type = 'FGVCAircraft'
data_root = 'data/fgvc-aircraft-2013b'
data_preprocessor = dict(num_classes=100)
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='trainval'))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
