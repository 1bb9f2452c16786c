"""--amp on a CPU: one warning line says that it costs time there."""
import logging

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from pad_mm.apis.runner import cpu_amp_cfg


class _Records(logging.Handler):

    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_amp_on_cpu_warns_that_it_is_slower():
    cfg = Config(dict(optim_wrapper=dict(type='AmpOptimWrapper',
                                         optimizer=dict(type='SGD', lr=0.1))))
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    try:
        cpu_amp_cfg(cfg)
    finally:
        logger.removeHandler(handler)
    assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    notes = [r for r in handler.records if 'AmpOptimWrapper' in r.getMessage()]
    assert len(notes) == 1
    assert notes[0].levelno == logging.WARNING
    text = notes[0].getMessage()
    assert 'not time' in text and 'drop --amp' in text
    # a config without AMP says nothing
    plain = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    logger.addHandler(handler)
    handler.records.clear()
    try:
        cpu_amp_cfg(plain)
    finally:
        logger.removeHandler(handler)
    assert handler.records == []
