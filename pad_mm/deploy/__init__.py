"""Deployment: freezing the PAD layers that do not adapt into plain convs
(:mod:`.freeze`) and the config rewriting it needs
(:mod:`.frozen_config`)."""
from .freeze import (FreezeOutcome, decide, express, freeze_pad,
                     freeze_table, frozen_model, record_shares)
from .frozen_config import (backbone_base_cfg, pad_config, plain_config,
                            regular_config)

__all__ = [
    'freeze_pad', 'FreezeOutcome', 'record_shares', 'decide', 'express',
    'frozen_model', 'freeze_table', 'backbone_base_cfg', 'regular_config',
    'plain_config', 'pad_config'
]
