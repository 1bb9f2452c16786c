# Stanford Cars (196 classes, train 8144 / test 8041), crop 224: the shared
# fine-grained data config read with mmpretrain's own `StanfordCars` class
# (cars_train/, cars_test/, devkit/*.mat, or car_ims/ + cars_annos.mat).
_base_ = ['./finegrained_bs32_224px.py']

dataset_type = 'StanfordCars'
data_root = 'data/stanford_cars'
data_preprocessor = dict(num_classes=196)
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='train'))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
