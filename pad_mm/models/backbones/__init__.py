"""Registered in the mmseg and/or mmpretrain scopes; one import line per module file."""
