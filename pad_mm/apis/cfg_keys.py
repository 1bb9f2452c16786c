"""Check ``--cfg-options`` keys against an assembled config.

mmengine merges ``--cfg-options a.b.c=v`` into the config whatever the
keys: a misspelt key (``train_cfg.max_iter=4``) is silently added next to
the real one and ignored, or fails hundreds of lines later inside a
constructor. :func:`check_cfg_keys` rejects, before anything is built,

- a key whose parent path does not exist (``train_cf.max_iters``);
- a list index out of range or on a non-list (``custom_hooks.3.tau``);
- a last key that does not exist while an existing sibling is a near
  miss (``train_cfg.max_iter`` next to ``max_iters``);

and names the closest existing key (:mod:`difflib`). A new last key with
no near-miss sibling is allowed: adding a constructor argument the base
config does not state (``model.backbone.frozen_stages=1``) is legitimate.

It also checks values against what they replace. ``DictAction`` parses
ints, floats, bools, strings and lists/tuples of them, so
``visualizer.vis_backends=[dict(type='TensorboardVisBackend')]`` arrives
as the string ``"dict(type='TensorboardVisBackend')"`` and fails later in
mmengine with a ``TypeError``. Rejected: a string that spells a dict
(``dict(...)``, ``{...}``), a plain value where the config has a dict, and
a list of plain values where the config has a list of config dicts.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ['check_cfg_keys', 'closest_key', 'NEAR_MISS_CUTOFF']

#: difflib similarity above which a missing last key counts as a typo of
#: an existing sibling ('max_iter' vs 'max_iters': 0.94)
NEAR_MISS_CUTOFF = 0.8


def closest_key(name: str, candidates, cutoff: float = 0.6) -> str | None:
    """The candidate most similar to ``name`` (difflib ratio >= cutoff),
    or None."""
    found = difflib.get_close_matches(
        name, [str(c) for c in candidates], n=1, cutoff=cutoff)
    return found[0] if found else None


def _describe(node: Any) -> str:
    if isinstance(node, Mapping):
        keys = sorted(str(k) for k in node)
        return f'keys {keys}' if keys else 'no keys'
    if isinstance(node, (list, tuple)):
        return f'indices 0..{len(node) - 1}' if node else 'no items'
    return f'no sub-keys (it is a {type(node).__name__})'


def check_cfg_keys(root: Mapping, options: Mapping[str, Any] | None,
                   error: Callable[..., Exception] = ValueError) -> None:
    """Check every ``--cfg-options`` key against the assembled config.

    Args:
        root: the config as a mapping (``cfg._cfg_dict`` or ``cfg``).
        options: ``{dotted key: value}`` as mmengine's ``DictAction``
            parses them.
        error: exception factory called as ``error(field, value, allowed,
            why)`` (pad_mm passes ``PADConfigError``); a plain
            ``ValueError`` gets one message.

    Raises:
        the ``error``: naming the option, its value, what exists there and
            the closest existing key.
    """
    for key, value in (options or {}).items():
        problem = _key_problem(root, key) or _value_problem(root, key, value)
        if problem is None:
            continue
        allowed, why = problem
        if error is ValueError:
            raise ValueError(f'--cfg-options {key}={value!r}: {why}; '
                             f'allowed: {allowed}')
        raise error(f'--cfg-options {key}', value, allowed, why)


def _key_problem(root: Mapping, key: str) -> tuple[str, str] | None:
    parts = key.split('.')
    node: Any = root
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = '.'.join(parts[:depth]) or 'the config'
        if isinstance(node, Mapping):
            if part in node:
                node = node[part]
                continue
            near = closest_key(part, node,
                               NEAR_MISS_CUTOFF if last else 0.6)
            if last and near is None:
                return None  # a new key, not a near miss of an existing one
            prefix = '.'.join(parts[:depth] + [near]) if near else None
            hint = f'did you mean {prefix!r}? ' if near else ''
            allowed = ('existing keys, or a new key unlike all of them'
                       if last else 'keys whose parents exist')
            return (f'{allowed}; {where} has {_describe(node)}',
                    f'{hint}{part!r} does not exist in {where}')
        if isinstance(node, (list, tuple)):
            if part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            return (f'{where} is a list with {_describe(node)}',
                    f'{part!r} is not an index of {where}')
        return (f'{where} has {_describe(node)}',
                f'{where} is a value, not a dict or list')
    return None


_DICT_TEXT = re.compile(r'^\s*(dict\s*\(|\{)')
_MISSING = object()


def _existing(root: Mapping, key: str) -> Any:
    """The value at the dotted ``key`` (list indices as digits), or
    ``_MISSING``."""
    node: Any = root
    for part in key.split('.'):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and \
                int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _value_problem(root: Mapping, key: str,
                   value: Any) -> tuple[str, str] | None:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if isinstance(item, str) and _DICT_TEXT.match(item):
            return (
                'ints, floats, bools, strings and lists/tuples of them '
                '(--cfg-options cannot build a dict: set the keys of an '
                f'existing item, e.g. {key}.0.type=..., or write it in a '
                'config of your own that inherits this one)',
                f'{item!r} would be a string, not a dict')
    old = _existing(root, key)
    if old is _MISSING or value is None:
        return None
    if isinstance(old, Mapping) and not isinstance(value, Mapping):
        return (f'None, or values for the keys of the dict ({key}.<key>='
                '...)', f'{key} is a dict in the config; a '
                f'{type(value).__name__} would replace it')
    if isinstance(old, (list, tuple)) and old and all(
            isinstance(o, Mapping) for o in old) and not all(
                isinstance(v, Mapping) for v in items):
        return (f'values for the keys of its items ({key}.<index>.<key>='
                '...)', f'{key} is a list of config dicts in the config; '
                'a list of plain values would replace it')
    return None
