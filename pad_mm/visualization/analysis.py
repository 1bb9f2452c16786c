"""Load a model from a config + checkpoint, feed it one image, and measure
receptive fields.

Works for segmentation (mmseg) and classification (mmpretrain) configs:
the task comes from the config's ``default_scope``.
"""
from __future__ import annotations

import copy
import os.path as osp
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from torch import Tensor

from pad_mm.models.layers import PADConv2d

__all__ = [
    'load_model', 'load_config', 'test_pipeline_cfg', 'prepare_image',
    'prepare_sample', 'forward_tensor', 'dilation_panels',
    'capture_outputs', 'layer_output', 'effective_receptive_field',
    'sampled_positions',
    'module_geometry', 'conv_trace', 'ImageBatch', 'write_json', 'write_csv',
    'safe_name'
]


def load_config(config: str | Config) -> Config:
    if isinstance(config, Config):
        return config
    if not osp.isfile(config):
        raise FileNotFoundError(f'config: no such file {config!r}')
    return Config.fromfile(config)


def load_model(config: str | Config,
               checkpoint: str | None = None,
               device: str = 'cpu') -> tuple[nn.Module, Config]:
    """Build ``cfg.model`` in the config's scope, load ``checkpoint`` (if
    given; otherwise the weights are as constructed, ``init_weights`` is
    not run) and return ``(model in eval mode, cfg)``.

    Raises:
        FileNotFoundError: config or checkpoint missing.
        ValueError: ``default_scope`` is not 'mmseg' or 'mmpretrain'.
    """
    import pad_mm  # noqa: F401  (registration, torch.load fix)
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import load_checkpoint

    from pad_mm.runtime.runner_utils import task_of
    cfg = load_config(config)
    task_of(cfg)
    init_default_scope(cfg.default_scope)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pop('pretrained', None)
    if cfg.get('data_preprocessor') is not None:  # as mmengine's Runner
        model_cfg.setdefault('data_preprocessor',
                             copy.deepcopy(cfg.data_preprocessor))
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'checkpoint: no such file {checkpoint!r}')
        # no weight download or re-initialisation over the checkpoint
        if isinstance(model_cfg.get('backbone'), dict):
            model_cfg['backbone'].pop('init_cfg', None)
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu',
                        revise_keys=[(r'^module\.', '')])
    model.cfg = cfg
    return model.to(device).eval(), cfg


def test_pipeline_cfg(cfg: Config) -> list[dict]:
    """The config's test pipeline without annotation loading."""
    pipeline = None
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if loader is not None:
        ds = loader.get('dataset', {})
        while pipeline is None and isinstance(ds, dict):
            pipeline = ds.get('pipeline')
            ds = ds.get('dataset')
    if pipeline is None:
        pipeline = cfg.get('test_pipeline')
    if pipeline is None:
        raise ValueError('the config has no test_dataloader.dataset.pipeline '
                         'and no test_pipeline to prepare an image with')
    return [copy.deepcopy(t) for t in pipeline
            if 'Annotation' not in str(t.get('type', ''))]


class ImageBatch:
    """One image through the config's test pipeline and data preprocessor.

    Attributes:
        batch: the collated pipeline output (for ``model.test_step``).
        inputs: [1, 3, H, W] normalised model input.
        image: [H, W, 3] uint8 RGB, the image as the model sees it (after
            resizing / cropping, before normalisation; padding excluded).
    """

    def __init__(self, batch: dict, inputs: Tensor, image: np.ndarray):
        self.batch = batch
        self.inputs = inputs
        self.image = image


def prepare_sample(model: nn.Module, data: dict,
                   device: str = 'cpu') -> ImageBatch:
    """An ``ImageBatch`` from one pipeline output (``dataset[i]``)."""
    from mmengine.dataset import pseudo_collate
    batch = pseudo_collate([data])
    raw = batch['inputs'][0]  # [3, H, W] uint8
    # LoadImageFromFile gives BGR (mmcv's convention)
    image = np.ascontiguousarray(
        raw.permute(1, 2, 0).cpu().numpy().astype(np.uint8)[..., ::-1])
    with torch.no_grad():
        inputs = model.data_preprocessor(copy.copy(batch), False)['inputs']
    return ImageBatch(batch, inputs.to(device), image)


def prepare_image(model: nn.Module, cfg: Config, image_path: str,
                  device: str = 'cpu') -> ImageBatch:
    """Run ``image_path`` through the test pipeline and preprocessor."""
    from mmengine.dataset import Compose
    if not osp.isfile(image_path):
        raise FileNotFoundError(f'image: no such file {image_path!r}')
    data = Compose(test_pipeline_cfg(cfg))(dict(img_path=image_path))
    return prepare_sample(model, data, device)


def forward_tensor(model: nn.Module, inputs: Tensor):
    """One whole-image forward of the network (``mode='tensor'``: backbone,
    neck and head, no sliding window or test-time augmentation)."""
    return model(inputs, mode='tensor')


def dilation_panels(model: nn.Module,
                    inputs: Tensor) -> tuple[list[dict], dict]:
    """Forward ``inputs`` [1, 3, H, W] once and return, per PAD layer in
    call order, ``dict(name, dilations, expected [h, w], chosen [h, w],
    logits [D, h, w], probs [D, h, w])`` (numpy), plus the pooled
    statistics of :func:`summarize_dilation_stats`."""
    from pad_mm.evaluation.recorder import (chosen_dilation,
                                            expected_dilation, recording,
                                            summarize_dilation_stats)
    with recording(model, keep_maps=True) as rec, torch.no_grad():
        forward_tensor(model, inputs)
    stats = summarize_dilation_stats(rec.pop_sums())
    panels = []
    for name, (logits, probs) in rec.maps().items():
        dil = rec.records[name].dilations
        panels.append(dict(
            name=name, dilations=list(dil),
            expected=expected_dilation(
                torch.softmax(logits.double(), 1), dil)[0].numpy(),
            chosen=chosen_dilation(probs, dil)[0].numpy(),
            logits=logits[0].numpy(), probs=probs[0].numpy()))
    return panels, stats


@contextmanager
def capture_outputs(model: nn.Module, names: Sequence[str]):
    """Collect the outputs of the named submodules during a forward:
    ``with capture_outputs(model, ['backbone.layer4']) as out: ...``,
    then ``out['backbone.layer4']`` (the last call's output)."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        examples = [n for n, m in model.named_modules()
                    if isinstance(m, nn.Conv2d)][:6]
        raise ValueError(f'layer {missing[0]!r} is not a module of '
                         f'{type(model).__name__}; module names look like '
                         f'{examples}')
    out: dict[str, Tensor] = {}
    handles = []
    for n in names:
        def hook(m, args, output, n=n):
            out[n] = output[0] if isinstance(output, (tuple, list)) \
                else output
        handles.append(modules[n].register_forward_hook(hook))
    try:
        yield out
    finally:
        for h in handles:
            h.remove()


class _StopForward(Exception):
    pass


def layer_output(model: nn.Module, layer: str, inputs: Tensor) -> Tensor:
    """Output of module ``layer`` for ``inputs``, stopping the forward
    (``mode='tensor'``) as soon as that module has run."""
    modules = dict(model.named_modules())
    if layer not in modules:
        with capture_outputs(model, [layer]):
            pass  # raises the ValueError naming the layer
    out: list[Tensor] = []

    def hook(m, args, output):
        out.append(output[0] if isinstance(output, (tuple, list))
                   else output)
        raise _StopForward

    handle = modules[layer].register_forward_hook(hook)
    try:
        forward_tensor(model, inputs)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not out:
        raise ValueError(f'layer {layer!r} did not run in the forward pass')
    return out[0]


def effective_receptive_field(forward: Callable[[Tensor], Tensor],
                              inputs: Tensor,
                              unit: tuple[int, int] | Sequence[tuple[int,
                                                                     int]]
                              ) -> Tensor:
    """ERF of output units (Luo et al., 2016): ``|d y[0, :, i, j].sum()
    / d inputs|`` summed over input channels.

    Args:
        forward: maps inputs [1, C, H, W] to a feature map [1, C', h, w].
        inputs: [1, C, H, W].
        unit: (i, j) on the feature map, or a list of them (one forward
            pass, one backward pass per unit).

    Returns:
        [H, W] non-negative gradient magnitude, or [U, H, W] for a list.
    """
    units = [unit] if isinstance(unit[0], int) else list(unit)
    x = inputs.detach().clone().requires_grad_(True)
    maps = []
    with torch.enable_grad():
        y = forward(x)
        if y.dim() != 4:
            raise ValueError(f'the layer output must be [N, C, h, w], got '
                             f'shape {tuple(y.shape)}')
        for k, (i, j) in enumerate(units):
            if not (0 <= i < y.shape[2] and 0 <= j < y.shape[3]):
                raise ValueError(f'unit {(i, j)} is outside the '
                                 f'{tuple(y.shape[2:])} feature map')
            (grad, ) = torch.autograd.grad(
                y[0, :, i, j].sum(), x, retain_graph=k < len(units) - 1)
            maps.append(grad[0].abs().sum(0).detach())
    return maps[0] if isinstance(unit[0], int) else torch.stack(maps)


def module_geometry(module: nn.Conv2d) -> tuple[int, int, int]:
    """(kernel, stride, dilation) of a square conv."""
    return module.kernel_size[0], module.stride[0], module.dilation[0]


def sampled_positions(layers: Sequence[dict],
                      unit: tuple[int, int]) -> np.ndarray:
    """Receptive field as the positions sampled by a stack of 3x3 (odd k)
    convs, followed backwards from one output unit.

    Args:
        layers: in forward order, one dict per conv with ``kernel``,
            ``stride``, ``in_size`` (H, W of its input), ``out_size`` and
            ``dilation``: an int, or an [H_out, W_out] int array of the
            dilation chosen at each output pixel (PAD).
            Between consecutive convs, the input grid of one is mapped to
            the output grid of the previous by scaling.
        unit: (i, j) on the output grid of the last conv.

    Returns:
        bool [H_in, W_in] mask on the input grid of the first conv.
    """
    oh, ow = layers[-1]['out_size']
    cells = np.zeros((oh, ow), bool)
    cells[unit] = True
    for idx in range(len(layers) - 1, -1, -1):
        lay = layers[idx]
        k, s = lay['kernel'], lay['stride']
        ih, iw = lay['in_size']
        dil = lay['dilation']
        nxt = np.zeros((ih, iw), bool)
        r = (k - 1) // 2
        for i, j in zip(*np.nonzero(cells)):
            d = int(dil[i, j]) if isinstance(dil, np.ndarray) else int(dil)
            for a in range(-r, r + 1):
                for b in range(-r, r + 1):
                    y, x = i * s + a * d, j * s + b * d
                    if 0 <= y < ih and 0 <= x < iw:
                        nxt[y, x] = True
        if idx > 0:
            ph, pw = layers[idx - 1]['out_size']
            if (ph, pw) != (ih, iw):
                ys, xs = np.nonzero(nxt)
                nxt2 = np.zeros((ph, pw), bool)
                nxt2[(ys * ph) // ih, (xs * pw) // iw] = True
                nxt = nxt2
        cells = nxt
    return cells


def conv_trace(model: nn.Module, names: Sequence[str],
               run: Callable[[], object]) -> list[dict]:
    """Geometry of the named convs during ``run()`` (forward order), as
    :func:`sampled_positions` wants it. A PAD layer's ``dilation`` is the
    map of its chosen (argmax) absolute dilation."""
    from pad_mm.evaluation.recorder import chosen_dilation
    modules = dict(model.named_modules())
    seen: dict[str, dict] = {}
    order: list[str] = []
    handles = []
    for n in names:
        m = modules.get(n)
        if not isinstance(m, nn.Conv2d):
            raise ValueError(f'{n!r} is not a conv of {type(model).__name__}')

        def hook(mod, args, out, n=n):
            k, s, d = module_geometry(mod)
            info = dict(kernel=k, stride=s, dilation=d,
                        in_size=tuple(args[0].shape[-2:]),
                        out_size=tuple(out.shape[-2:]))
            seen.setdefault(n, {}).update(info)
            if n not in order:
                order.append(n)
        handles.append(m.register_forward_hook(hook))
        if isinstance(m, PADConv2d) and m.adaptive:
            def probe_hook(mod, args, out, n=n, layer=m):
                seen.setdefault(n, {})['chosen'] = chosen_dilation(
                    args[1], layer.abs_dilations)[0].cpu().numpy()
            handles.append(m.probe.register_forward_hook(probe_hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    trace = []
    for n in order:
        info = dict(seen[n], name=n)
        if 'chosen' in info:
            info['dilation'] = info.pop('chosen')
        trace.append(info)
    return trace


def write_json(obj, path: str) -> str:
    """Write ``obj`` as indented JSON (creating the folder)."""
    import json
    import os
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2)
    return path


def write_csv(array, path: str, fmt: str = '%.6g') -> str:
    """Write a 2-D array as CSV (one row per image row)."""
    import os
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    np.savetxt(path, np.asarray(array, dtype=float), delimiter=',', fmt=fmt)
    return path


def safe_name(name: str) -> str:
    """A module name as a file-name part."""
    return ''.join(c if c.isalnum() or c in '-_.' else '_' for c in name)
