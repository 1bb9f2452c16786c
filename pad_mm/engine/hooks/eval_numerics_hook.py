"""Say so when an image's input or output is not finite at val / test.

A NaN in an input image turns the whole prediction into class 0 without a
word (argmax of NaN logits); :class:`PADNumericsHook` guards training only.
"""
from __future__ import annotations

import logging
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

from pad_mm.registry import HOOKS

__all__ = ['PADEvalNumericsHook', 'nonfinite_parts']

# prediction fields of mmseg's SegDataSample / mmpretrain's DataSample
_OUTPUT_FIELDS = ('seg_logits', 'pred_score')


def _tensor(value):
    data = getattr(value, 'data', value)
    return data if isinstance(data, torch.Tensor) else None


def nonfinite_parts(inputs, sample) -> list[str]:
    """What of one image is not finite: ``'input'`` and/or the prediction
    field (``'seg_logits'``, ``'pred_score'``)."""
    bad = []
    if isinstance(inputs, torch.Tensor) and inputs.is_floating_point() and \
            not bool(torch.isfinite(inputs).all()):
        bad.append('input')
    for name in _OUTPUT_FIELDS:
        t = _tensor(getattr(sample, name, None))
        if t is not None and t.is_floating_point() and \
                not bool(torch.isfinite(t).all()):
            bad.append(name)
    return bad


@HOOKS.register_module()
class PADEvalNumericsHook(Hook):
    """Warn, naming the image, when its input or its predicted logits /
    scores hold NaN or inf at validation or test, and log how many images
    did as ``val/nonfinite_images`` / ``test/nonfinite_images`` (next to
    the metrics, so a score computed on them is not taken at face value).

    Attributes:
        nonfinite: images of the current loop with a non-finite part.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self.nonfinite = 0

    def _begin(self, runner) -> None:
        self.nonfinite = 0

    def _check(self, runner, data_batch, outputs, mode: str) -> None:
        inputs = (data_batch or {}).get('inputs') if isinstance(
            data_batch, dict) else None
        for i, sample in enumerate(outputs or []):
            image = inputs[i] if isinstance(inputs, (list, tuple)) and \
                i < len(inputs) else None
            bad = nonfinite_parts(image, sample)
            if bad:
                self.nonfinite += 1
                meta = getattr(sample, 'metainfo', {}) or {}
                name = meta.get('img_path') or f'image {i} of the batch'
                print_log(f'{mode}: {osp.basename(str(name))} has NaN/inf '
                          f'in its {" and ".join(bad)}; its prediction is '
                          'meaningless (counted in '
                          f'{mode}/nonfinite_images)', logger='current',
                          level=logging.WARNING)

    def _end(self, runner, mode: str) -> None:
        runner.message_hub.update_scalar(f'{mode}/nonfinite_images',
                                         self.nonfinite)
        if self.nonfinite:
            print_log(f'{mode}: {self.nonfinite} image(s) had NaN/inf '
                      'inputs or outputs', logger='current',
                      level=logging.WARNING)

    def before_val_epoch(self, runner) -> None:
        self._begin(runner)

    def before_test_epoch(self, runner) -> None:
        self._begin(runner)

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None) -> None:
        self._check(runner, data_batch, outputs, 'val')

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        self._check(runner, data_batch, outputs, 'test')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._end(runner, 'val')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._end(runner, 'test')
