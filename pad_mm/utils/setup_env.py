"""Register all modules of pad_mm and the codebases it builds on."""
from __future__ import annotations

__all__ = ['register_all_modules']

#: default scopes pad_mm configs use (they select the task)
SCOPES = ('mmseg', 'mmpretrain')


def register_all_modules(init_default_scope: bool = True,
                         scope: str = 'mmseg') -> None:
    """Register pad_mm's modules (PAD conv layer and backbone builder,
    backbones, heads, hooks, datasets, metrics) and mmseg's and
    mmpretrain's into their registries.

    Args:
        init_default_scope: also make ``scope`` the current default scope
            (a new ``DefaultScope`` instance if another one is current), as
            ``mmseg.utils.register_all_modules`` does.
        scope: ``'mmseg'`` (segmentation) or ``'mmpretrain'``
            (classification).

    Raises:
        ValueError: ``scope`` is not one of them.
    """
    if scope not in SCOPES:
        raise ValueError(f'scope must be one of {list(SCOPES)}, got '
                         f'{scope!r}')
    import mmpretrain.utils
    import mmseg.utils

    import pad_mm  # noqa: F401  (registers pad_mm's modules)
    mmseg.utils.register_all_modules(init_default_scope=False)
    mmpretrain.utils.register_all_modules(init_default_scope=False)
    if init_default_scope:
        from mmengine.registry import init_default_scope as _init
        _init(scope)
