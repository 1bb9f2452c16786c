"""The classification demo (configs/demo_cls/): the PAD ResNet-18 and its
vanilla twin train 2 iterations through tools/train.py on a tiny
PAD-Textures-Cls set generated on first use, validate with mmpretrain's
Accuracy, and write a checkpoint; the PAD checkpoint, published with
tools/publish_model.py, loads through mmpretrain's get_model and
ImageClassificationInferencer by model name and predicts."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import pad_mm.cls  # noqa: F401  (registers pad_mm for mmpretrain)
from pad_mm.datasets import TEXTURE_CLS_CLASSES
from pad_mm.models import PADConv2d

from helpers.configs import load_config
from helpers.tools import load_tool
from helpers.training import unique_name

FOLDER = 'configs/demo_cls'
VANILLA = 'resnet18_textures_cls'
PAD = 'pad_resnet18_textures_cls'
PAD_LAYERS = ['backbone.layer2.0.conv2', 'backbone.layer2.1.conv1',
              'backbone.layer2.1.conv2']


def _tiny(repo_root, name, tmp) -> str:
    """The config with a 10-image train set at batch 5: one epoch is 2
    iterations, then one validation on 5 images."""
    cfg = load_config(osp.join(repo_root, FOLDER, f'{name}.py'))
    gen = dict(seed=1, num_train=10, num_val=5, size=32)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(tmp / 'data')
        cfg[loader].dataset.generate = gen
    cfg.train_dataloader.batch_size = 5
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 1
    cfg.param_scheduler.T_max = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.logger.interval = 1
    name = unique_name()
    cfg.experiment_name = name
    cfg.visualizer.name = f'vis_{name}'
    path = tmp / f'tiny_{name}.py'
    cfg.dump(str(path))
    return str(path)


@pytest.fixture(scope='module')
def runs(repo_root, tmp_path_factory):
    train = load_tool(repo_root, 'train.py')
    out = {}
    for name in (VANILLA, PAD):
        tmp = tmp_path_factory.mktemp(name)
        work = tmp / 'work'
        runner = train.main([_tiny(repo_root, name, tmp), '--work-dir',
                             str(work)])
        out[name] = dict(tmp=tmp, work=work, model=runner.model,
                         cfg=runner.cfg)
    return out


def _scalars(work) -> list[dict]:
    files = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))
    assert len(files) == 1, files
    with open(files[0]) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize('name', [VANILLA, PAD])
def test_two_iterations_validate_and_checkpoint(runs, name):
    run = runs[name]
    ckpt = run['work'] / 'epoch_1.pth'
    assert ckpt.is_file()
    assert (run['work'] / 'last_checkpoint').read_text().strip() == str(ckpt)
    records = _scalars(run['work'])
    train = [r for r in records if 'loss' in r]
    assert [r['iter'] for r in train] == [1, 2]
    assert all(torch.isfinite(torch.tensor(r['loss'])) for r in train)
    val = [r for r in records if 'accuracy/top1' in r]
    assert len(val) == 1
    assert 0.0 <= val[0]['accuracy/top1'] <= 100.0
    # 5 val images: the accuracy is a multiple of 20 %
    assert val[0]['accuracy/top1'] % 20 == pytest.approx(0, abs=1e-6)
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert tuple(state['meta']['dataset_meta']['classes']) == \
        TEXTURE_CLS_CLASSES
    assert state['meta']['epoch'] == 1 and state['meta']['iter'] == 2


def test_pad_layers_only_in_the_pad_model(runs):
    pad = runs[PAD]['model']
    vanilla = runs[VANILLA]['model']
    adaptive = [n for n, m in pad.named_modules()
                if isinstance(m, PADConv2d) and m.adaptive]
    assert adaptive == PAD_LAYERS
    for n in adaptive:
        assert pad.get_submodule(n).dilations == (1, 2, 4)
        assert pad.get_submodule(n).aggregation == 'markov'
    assert not any(isinstance(m, PADConv2d) for m in vanilla.modules())
    # the twins differ only in the PAD layers' prior parameters
    pad_keys = set(pad.state_dict())
    vanilla_keys = set(vanilla.state_dict())
    assert vanilla_keys < pad_keys
    extra = pad_keys - vanilla_keys
    assert extra and all(k.startswith(tuple(f'{n}.' for n in PAD_LAYERS))
                         for k in extra), sorted(extra)
    assert {k for k in extra if '.prior.' in k}  # the priors' parameters
    for k in vanilla_keys:
        assert pad.state_dict()[k].shape == vanilla.state_dict()[k].shape
    # tau was annealed over the 2 iterations (exp 1.0 -> 0.2)
    taus = [r['tau'] for r in _scalars(runs[PAD]['work']) if 'tau' in r]
    assert taus and taus[-1] < 1.0


@pytest.fixture(scope='module')
def published(runs, repo_root):
    run = runs[PAD]
    publish = load_tool(repo_root, 'publish_model.py')
    result = publish.main([str(run['work'] / 'epoch_1.pth'),
                           str(run['tmp'] / 'pub' / f'{PAD}.pth')])
    return dict(run, **result)


def _val_image(run) -> str:
    return sorted(glob.glob(str(run['tmp'] / 'data' / 'val' / '*' /
                                '*.png')))[0]


def test_get_model_loads_the_published_checkpoint(published):
    from mmpretrain import get_model
    path = published['path']
    assert osp.basename(path).startswith(f'{PAD}-')
    assert published['max_abs_diff'] == 0.0
    model = get_model(PAD, pretrained=path, device='cpu')
    adaptive = [n for n, m in model.named_modules()
                if isinstance(m, PADConv2d) and m.adaptive]
    assert adaptive == PAD_LAYERS
    pub = torch.load(path, map_location='cpu', weights_only=True)
    state = model.state_dict()
    for k, v in pub['state_dict'].items():
        assert torch.equal(state[k], v), k
    # the trained model's output, not a fresh one
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    model.eval()
    trained = published['model'].eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'),
                                   trained(x, mode='tensor'))


def test_inferencer_predicts_with_the_published_checkpoint(published):
    from mmpretrain import ImageClassificationInferencer, get_model
    path = published['path']
    image = _val_image(published)
    inferencer = ImageClassificationInferencer(PAD, pretrained=path,
                                               device='cpu')
    # class names from the published checkpoint's dataset_meta
    assert tuple(inferencer.classes) == TEXTURE_CLS_CLASSES
    result = inferencer(image)[0]
    scores = torch.as_tensor(result['pred_scores'])
    assert scores.shape == (5,)
    assert float(scores.sum()) == pytest.approx(1.0, abs=1e-5)
    assert result['pred_label'] == int(scores.argmax())
    assert result['pred_class'] == TEXTURE_CLS_CLASSES[result['pred_label']]
    # the same scores as get_model's model on the same image
    from mmengine.dataset import Compose
    from mmpretrain.structures import DataSample  # noqa: F401
    model = get_model(PAD, pretrained=path, device='cpu').eval()
    pipeline = Compose([dict(type='mmpretrain.LoadImageFromFile'),
                        dict(type='mmpretrain.PackInputs')])
    data = model.data_preprocessor(
        {k: [v] for k, v in pipeline(dict(img_path=image)).items()}, False)
    with torch.no_grad():
        logits = model(data['inputs'], mode='tensor')
    torch.testing.assert_close(logits.softmax(-1)[0], scores, rtol=1e-5,
                               atol=1e-6)


def test_published_config_is_the_demo(published):
    pub = torch.load(published['path'], map_location='cpu',
                     weights_only=True)
    cfg = Config.fromstring(pub['meta']['cfg'], file_format='.py')
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.model.backbone.type == 'PADBackbone'
    assert cfg.model.backbone.base_type == 'ResNet_CIFAR'
    assert sorted(pub['meta']['pad']['layers']) == PAD_LAYERS
