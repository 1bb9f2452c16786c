"""Pre-flight checks of a config's data loaders and file paths (part of
:func:`pad_mm.apis.validate_config`): ``batch_size``, ``num_workers``,
``data_root`` and ``data_prefix`` exist and hold files of the expected
format, the generator parameters of ``PADTexturesDataset``, checkpoint
files; and the small checks the other pre-flight modules share."""
from __future__ import annotations

import inspect
import os
import os.path as osp
from collections.abc import Iterator, Sequence
from typing import Any

from mmengine.registry import DATASETS

from pad_mm.models.pad_cfg import PADConfigError

__all__ = [
    'PADConfigFileError', 'is_int', 'positive_int', 'walk', 'is_local',
    'need_file', 'check_loader', 'REMOTE_PREFIXES', 'IMG_SUFFIXES',
    'GENERATE_KEYS'
]

REMOTE_PREFIXES = ('http://', 'https://', 's3://', 'open-mmlab://',
                   'torchvision://', 'mmcls://', 'pavi://', 'modelzoo://')
IMG_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
GENERATE_KEYS = ('seed', 'num_train', 'num_val', 'size')


class PADConfigFileError(PADConfigError, FileNotFoundError):
    """A config field or CLI argument names a file/directory that is
    missing or has the wrong format."""




def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def positive_int(field: str, v: Any, minimum: int = 1) -> None:
    if not is_int(v) or v < minimum:
        raise PADConfigError(field, v, f'an int >= {minimum}')


def walk(node: Any, path: str) -> Iterator[tuple[str, dict]]:
    """Every dict in a config tree with its dotted path."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, f'{path}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from walk(v, f'{path}[{i}]')


def is_local(path: Any) -> bool:
    return isinstance(path, str) and not path.startswith(REMOTE_PREFIXES)


def need_file(field: str, path: Any, what: str) -> None:
    if not isinstance(path, str) or not path:
        raise PADConfigError(field, path, f'a path to {what}')
    if is_local(path) and not osp.isfile(path):
        why = ('is a directory' if osp.isdir(path) else 'no such file')
        raise PADConfigFileError(field, path, f'an existing {what} file',
                                 why)


def _datasets(node: Any, path: str) -> Iterator[tuple[str, dict]]:
    """The leaf dataset dicts of a (wrapped) dataset config."""
    if not isinstance(node, dict):
        return
    if 'dataset' in node and isinstance(node['dataset'], dict):
        yield from _datasets(node['dataset'], f'{path}.dataset')
    elif 'datasets' in node and isinstance(node['datasets'], (list, tuple)):
        for i, d in enumerate(node['datasets']):
            yield from _datasets(d, f'{path}.datasets[{i}]')
    else:
        yield path, node


def _has_files(directory: str, suffixes: Sequence[str]) -> bool:
    for _, _, files in os.walk(directory):
        if any(f.lower().endswith(tuple(suffixes)) for f in files):
            return True
    return False


def _generated_keys(typ) -> tuple[str, ...] | None:
    """The ``generate`` keys of a data set generated on first use (None:
    not such a data set)."""
    name = typ.rsplit('.', 1)[-1] if isinstance(typ, str) else None
    if name == 'PADTexturesDataset':
        return GENERATE_KEYS
    if name == 'PADEvidenceDataset':
        from pad_mm.datasets.evidence import DEFAULTS
        return tuple(DEFAULTS)
    if name == 'PADTexturesClsDataset':
        from pad_mm.datasets.textures_cls import DEFAULTS as CLS_DEFAULTS
        return tuple(CLS_DEFAULTS)
    return None


def _check_generate(field: str, gen: Any,
                    keys: tuple[str, ...] = GENERATE_KEYS) -> None:
    if not isinstance(gen, dict):
        raise PADConfigError(field, gen, f'None or a dict with keys '
                             f'{list(keys)}')
    for key, v in gen.items():
        if key not in keys:
            raise PADConfigError(f'{field}.{key}', v,
                                 f'keys {list(keys)}',
                                 f'unknown key {key!r}')
        if key == 'seed':
            if not is_int(v) or v < 0:
                raise PADConfigError(f'{field}.seed', v, 'an int >= 0')
        elif key in GENERATE_KEYS:
            positive_int(f'{field}.{key}', v, 16 if key == 'size' else 1)


def _default_arg(ds: dict, name: str) -> Any:
    """Default of argument ``name`` of the dataset class ``ds['type']``."""
    typ = ds.get('type')
    try:
        with DATASETS.switch_scope_and_registry(
                ds.get('_scope_')) as registry:
            cls = registry.get(typ) if isinstance(typ, str) else typ
        param = inspect.signature(cls.__init__).parameters.get(name)
    except Exception:  # noqa: BLE001  (unknown type: the build reports it)
        return None
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return param.default


def _check_dataset(field: str, ds: dict) -> None:
    gen = ds.get('generate')
    root = ds.get('data_root')
    keys = _generated_keys(ds.get('type'))
    if keys is not None and gen is not None:
        _check_generate(f'{field}.generate', gen, keys)
        if not isinstance(root, str) or not root:
            raise PADConfigError(f'{field}.data_root', root,
                                 'a directory path where the generated set '
                                 'is written')
        if osp.exists(root) and not osp.isdir(root):
            raise PADConfigFileError(f'{field}.data_root', root,
                                     'a directory (or a path to create)',
                                     'exists and is not a directory')
        return
    if root is not None and root != '':
        if not isinstance(root, str):
            raise PADConfigError(f'{field}.data_root', root,
                                 'a directory path')
        if not osp.isdir(root):
            raise PADConfigFileError(
                f'{field}.data_root', root, 'an existing directory',
                'exists but is not a directory' if osp.exists(root) else
                'no such directory')
    base = root or ''
    ann = ds.get('ann_file')
    if isinstance(ann, str) and ann:
        path = ann if osp.isabs(ann) else osp.join(base, ann)
        if not osp.isfile(path):
            raise PADConfigFileError(f'{field}.ann_file', ann,
                                     'an existing annotation file '
                                     f'(relative to data_root {base!r})',
                                     f'{path!r} does not exist')
    prefix = ds.get('data_prefix') or {}
    if not isinstance(prefix, dict):
        return
    img_suffix = ds.get('img_suffix', _default_arg(ds, 'img_suffix'))
    seg_suffix = ds.get('seg_map_suffix',
                        _default_arg(ds, 'seg_map_suffix') or '.png')
    for key, sub in prefix.items():
        if not isinstance(sub, str) or not sub:
            continue
        path = sub if osp.isabs(sub) else osp.join(base, sub)
        if not osp.isdir(path):
            raise PADConfigFileError(
                f'{field}.data_prefix.{key}', sub,
                f'a directory under data_root {base!r}',
                f'{path!r} does not exist')
        if key == 'img_path':
            suffixes = [img_suffix] if isinstance(img_suffix, str) else \
                list(IMG_SUFFIXES)
        elif key == 'seg_map_path':
            suffixes = [seg_suffix]
        else:
            continue
        if not _has_files(path, suffixes):
            raise PADConfigFileError(
                f'{field}.data_prefix.{key}', sub,
                f'a directory holding {"/".join(suffixes)} files '
                "(mmseg layout: data_root/<img_path>/*.<img_suffix>, "
                'data_root/<seg_map_path>/*.<seg_map_suffix>)',
                f'{path!r} has no such files (wrong format?)')


def check_loader(name: str, loader: Any) -> None:
    if not isinstance(loader, dict):
        raise PADConfigError(name, loader, 'a dataloader config dict')
    if 'batch_size' in loader:
        positive_int(f'{name}.batch_size', loader['batch_size'])
    if 'num_workers' in loader:
        positive_int(f'{name}.num_workers', loader['num_workers'], 0)
    if 'dataset' not in loader:
        raise PADConfigError(f'{name}.dataset', None, 'a dataset config')
    for field, ds in _datasets(loader['dataset'], f'{name}.dataset'):
        _check_dataset(field, ds)
