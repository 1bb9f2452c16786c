"""High-level APIs (the OpenMMLab ``apis/`` convention): load a model from
a config and a checkpoint, prepare an image, run it."""
from .inference import (ComparedModel, ImageBatch, default_input_shape,
                        forward_tensor, init_model, load_config, load_model,
                        load_pad_and_baseline, prepare_image, prepare_sample,
                        test_pipeline_cfg)

__all__ = [
    'load_config', 'load_model', 'init_model', 'test_pipeline_cfg',
    'ImageBatch', 'prepare_sample', 'prepare_image', 'forward_tensor',
    'default_input_shape', 'ComparedModel', 'load_pad_and_baseline'
]
