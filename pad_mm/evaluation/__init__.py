"""Metrics (registered in the mmseg / mmpretrain METRICS registries)."""
