"""A NaN input at val / test is named in a warning and counted, not
silently turned into class 0."""
import logging
from types import SimpleNamespace

import torch
from mmengine.logging import MessageHub, MMLogger
from mmengine.structures import PixelData

from pad_mm.engine import PADEvalNumericsHook


class _Records(logging.Handler):

    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def _sample(path, logits):
    s = SimpleNamespace(metainfo=dict(img_path=path),
                        seg_logits=PixelData(data=logits))
    return s


def test_nan_input_or_logits_are_named_and_counted():
    hub = MessageHub.get_instance('pad_mm_eval_numerics')
    runner = SimpleNamespace(message_hub=hub)
    hook = PADEvalNumericsHook()
    ok = torch.zeros(3, 4, 4)
    nan = ok.clone()
    nan[0, 1, 1] = float('nan')
    logits = torch.zeros(2, 4, 4)
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    try:
        hook.before_test_epoch(runner)
        hook.after_test_iter(
            runner, 0, dict(inputs=[ok, nan]),
            [_sample('/d/a.png', logits),
             _sample('/d/b.png', logits + float('nan'))])
        hook.after_test_iter(runner, 1, dict(inputs=[ok]),
                             [_sample('/d/c.png', logits)])
        hook.after_test_epoch(runner)
    finally:
        logger.removeHandler(handler)
    warnings = [r.getMessage() for r in handler.records
                if r.levelno == logging.WARNING]
    assert any('b.png' in w and 'input and seg_logits' in w
               for w in warnings), warnings
    assert not any('a.png' in w or 'c.png' in w for w in warnings)
    assert hook.nonfinite == 1
    assert hub.get_scalar('test/nonfinite_images').current() == 1
    # a clean loop logs 0 and warns nothing
    handler.records.clear()
    logger.addHandler(handler)
    try:
        hook.before_val_epoch(runner)
        hook.after_val_iter(runner, 0, dict(inputs=[ok]),
                            [_sample('/d/a.png', logits)])
        hook.after_val_epoch(runner)
    finally:
        logger.removeHandler(handler)
    assert hub.get_scalar('val/nonfinite_images').current() == 0
    assert not [r for r in handler.records if r.levelno == logging.WARNING]
