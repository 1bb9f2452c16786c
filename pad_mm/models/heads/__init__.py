"""Registered in the mmseg and/or mmpretrain scopes; one import line per module file."""
from .fcn_skip_head import FCN8sHead, FCN32sHead  # noqa: F401
