"""Draw dilation maps of a few fixed validation images every validation."""
from __future__ import annotations

from collections.abc import Sequence

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from pad_mm.registry import FUNCTIONS, HOOKS

__all__ = ['PADDilationMapHook']


@HOOKS.register_module()
class PADDilationMapHook(Hook):
    """After every ``interval``-th validation, forward the validation
    samples ``indices`` once more and add their dilation maps (expected
    and chosen dilation of every PAD layer, next to the image; see
    :func:`pad_mm.visualization.render_dilation_maps`) to the visualizer
    backends as ``pad_dilation_map_<index>`` (``LocalVisBackend`` writes
    ``vis_data/vis_image/pad_dilation_map_<index>_<iter>.png``, TensorBoard
    shows them under IMAGES with a step slider).

    Runs on the main process only (the pictures go to its backends).

    Args:
        indices: indices into the validation dataset (ints >= 0).
        interval: draw at every ``interval``-th validation (>= 1).
    """

    priority = 'LOW'

    def __init__(self, indices: Sequence[int] = (0, 1, 2, 3),
                 interval: int = 1) -> None:
        if isinstance(indices, (str, bytes)) or not isinstance(
                indices, Sequence) or not indices or not all(
                    isinstance(i, int) and not isinstance(i, bool) and i >= 0
                    for i in indices):
            raise ValueError('PADDilationMapHook.indices must be a non-empty '
                             f'list of ints >= 0, got {indices!r}')
        if isinstance(interval, bool) or not isinstance(interval, int) or \
                interval < 1:
            raise ValueError('PADDilationMapHook.interval must be an int >= '
                             f'1, got {interval!r}')
        self.indices = list(indices)
        self.interval = interval
        self._count = 0

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._count += 1
        if (self._count - 1) % self.interval or not is_main_process():
            return
        dataset = runner.val_dataloader.dataset
        bad = [i for i in self.indices if i >= len(dataset)]
        if bad:
            raise ValueError(
                f'PADDilationMapHook.indices: {bad} out of range for the '
                f'validation set of {len(dataset)} samples')
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        loop = runner._train_loop
        step = 0 if loop is None or isinstance(loop, dict) else runner.iter
        # pad_mm.visualization.dilation_map_image (registered by name: the
        # engine layer does not import visualization/)
        draw = FUNCTIONS.get('pad_dilation_map_image')
        was_training = model.training
        model.eval()
        try:
            for idx in self.indices:
                image = draw(model, dataset[idx],
                             title=f'val #{idx}, iter {step}')
                runner.visualizer.add_image(f'pad_dilation_map_{idx}', image,
                                            step=step)
        finally:
            model.train(was_training)
