"""Drawing dilation maps, receptive fields and activations."""
from .analysis import (ImageBatch, capture_outputs, conv_trace,
                       dilation_panels, effective_receptive_field,
                       forward_tensor, layer_output, load_config,
                       load_model,
                       prepare_image, prepare_sample, safe_name,
                       sampled_positions, test_pipeline_cfg, write_csv,
                       write_json)
from .figures import (CBAR_PX, DPI, HIST_SIZE, PANEL_PX, figure_to_array,
                      grid_size, render_activations,
                      render_dilation_histogram, render_dilation_maps,
                      render_receptive_fields, save_png, upscale)

__all__ = [
    'ImageBatch', 'capture_outputs', 'conv_trace', 'dilation_panels',
    'effective_receptive_field', 'forward_tensor', 'layer_output',
    'load_config', 'load_model', 'prepare_image', 'prepare_sample',
    'sampled_positions', 'test_pipeline_cfg', 'write_json', 'write_csv',
    'safe_name', 'CBAR_PX', 'DPI', 'HIST_SIZE', 'PANEL_PX',
    'figure_to_array', 'grid_size', 'render_activations',
    'render_dilation_histogram', 'render_dilation_maps',
    'render_receptive_fields', 'save_png', 'upscale'
]
