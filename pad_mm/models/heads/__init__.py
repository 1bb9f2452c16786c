"""Segmentation heads (need mmseg), registered in pad_mm's registry for
the segmentation task; one import line per module file."""
from .fcn_skip_head import FCN8sHead, FCN32sHead  # noqa: F401
