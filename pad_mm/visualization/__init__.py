"""Drawing dilation maps, receptive fields and activations.

- :mod:`.capture`: outputs of named modules, one layer's output, the PAD
  dilation maps of one forward pass;
- :mod:`.receptive_field`: effective receptive fields and sampled
  positions;
- :mod:`.figures`: the pictures; :mod:`.writers`: JSON / CSV files;
- :mod:`.truth`: an image's right-dilation map (PAD-Evidence) and each
  PAD layer's agreement with it.

Loading a model and preparing an image is :mod:`pad_mm.apis`.
"""
from .capture import (capture_outputs, dilation_map_image, dilation_panels,
                      layer_output)
from .figures import (CBAR_PX, DPI, HIST_SIZE, PANEL_PX, figure_to_array,
                      grid_size, render_activations,
                      render_dilation_histogram, render_dilation_maps,
                      render_receptive_fields, render_sweep_figure, save_png,
                      upscale)
from .receptive_field import (conv_trace, effective_receptive_field,
                              module_geometry, sampled_positions)
from .truth import auto_truth_path, layer_agreement, load_truth, truth_path
from .writers import safe_name, write_csv, write_json

__all__ = [
    'capture_outputs', 'conv_trace', 'dilation_panels', 'dilation_map_image',
    'effective_receptive_field', 'layer_output', 'module_geometry',
    'sampled_positions', 'write_json', 'write_csv', 'safe_name', 'CBAR_PX',
    'DPI', 'HIST_SIZE', 'PANEL_PX', 'figure_to_array', 'grid_size',
    'render_activations', 'render_dilation_histogram',
    'render_dilation_maps', 'render_receptive_fields', 'save_png', 'upscale',
    'render_sweep_figure', 'auto_truth_path', 'truth_path', 'load_truth',
    'layer_agreement'
]
