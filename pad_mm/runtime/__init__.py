"""Workarounds for upstream behaviour (mmengine / torch), each module naming
the upstream issue it works around."""
