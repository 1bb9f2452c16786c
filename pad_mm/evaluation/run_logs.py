"""Reading a finished (or running) training run from what mmengine wrote
into its work dir: ``<timestamp>/vis_data/scalars.json`` (one JSON record
per line) and the text log ``<timestamp>/<timestamp>.log``.
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
import re

__all__ = [
    'timestamp_dirs', 'read_final_metrics', 'pad_stats',
    'last_checkpoint_step', 'train_progress'
]

_VAL_LINE = re.compile(r'(?:Iter|Epoch)\(val\)\s*\[[^\]]*\]\s*(.*)$')
_PAIR = re.compile(r'(\S+):\s+(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan)')
_ITER = re.compile(r'(?:Iter|Epoch)\(train\)\s*\[\s*(\d+)\s*/\s*(\d+)\]')


def timestamp_dirs(work_dir: str) -> list[str]:
    """The ``YYYYMMDD_HHMMSS`` folders mmengine made in ``work_dir`` (one
    per start of the run), oldest first."""
    if not osp.isdir(work_dir):
        return []
    return sorted(d for d in (osp.join(work_dir, n)
                              for n in os.listdir(work_dir))
                  if osp.isdir(d) and re.fullmatch(r'\d{8}_\d{6}',
                                                   osp.basename(d)))


def read_final_metrics(work_dir: str, metric: str) -> dict:
    """The last validation record holding ``metric`` in the run's logs.

    Reads every ``<timestamp>/vis_data/scalars.json`` of the work dir (a
    resumed run has several; later ones win) and takes the record with the
    largest ``step``; without a scalar log, the last ``Iter(val)`` /
    ``Epoch(val)`` line of the ``<timestamp>/<timestamp>.log`` text logs
    (``step`` is then -1).

    Returns ``dict(value, step, record, source)``.

    Raises:
        ValueError: no validation record names ``metric``.
    """
    best = None
    for stamp in timestamp_dirs(work_dir):
        path = osp.join(stamp, 'vis_data', 'scalars.json')
        if not osp.isfile(path):
            continue
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                if metric in rec and (best is None or
                                      rec.get('step', 0) >= best[0]):
                    best = (rec.get('step', 0), rec, path)
    if best is None:
        for stamp in timestamp_dirs(work_dir):
            log = osp.join(stamp, osp.basename(stamp) + '.log')
            if not osp.isfile(log):
                continue
            with open(log) as f:
                for line in f:
                    m = _VAL_LINE.search(line)
                    if not m:
                        continue
                    rec = {k: float(v) for k, v in _PAIR.findall(m.group(1))}
                    if metric in rec:
                        best = (-1, rec, log)
    if best is None:
        raise ValueError(
            f'{work_dir}: no validation record with metric {metric!r} in '
            'its logs (*/vis_data/scalars.json, */*.log); the run must '
            'validate at its last iteration (val_interval dividing '
            'max_iters) and --metric must name a logged key')
    step, rec, source = best
    return dict(value=float(rec[metric]), step=step, record=rec,
                source=source)


def pad_stats(record: dict) -> dict | None:
    """``PADDilationMetric`` keys of a validation record: pooled sigma^2(d)
    and mean dilation, and per layer sigma^2(d) and the share of each
    dilation (``{layer: dict(var_dilation, shares={d: fraction})}``); None
    when the record has no ``pad/var_dilation``."""
    if 'pad/var_dilation' not in record:
        return None
    layers: dict[str, dict] = {}
    for key, value in record.items():
        m = re.fullmatch(r'pad/(.+)/frac_d(\d+)', key)
        if m:
            layers.setdefault(m.group(1), dict(shares={}))['shares'][int(
                m.group(2))] = float(value)
            continue
        m = re.fullmatch(r'pad/(.+)/var_dilation', key)
        if m:
            layers.setdefault(m.group(1), dict(shares={}))[
                'var_dilation'] = float(value)
    for lay in layers.values():
        lay['shares'] = {d: lay['shares'][d] for d in sorted(lay['shares'])}
    return dict(var_dilation=float(record['pad/var_dilation']),
                mean_dilation=float(record.get('pad/mean_dilation',
                                               math.nan)),
                layers=layers)


def last_checkpoint_step(work_dir: str) -> int | None:
    """Iteration / epoch of the run's last checkpoint (``last_checkpoint``
    names ``iter_N.pth`` or ``epoch_N.pth``), None if unknown."""
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        m = re.search(r'(?:iter|epoch)_(\d+)\.pth', f.read())
    return int(m.group(1)) if m else None


def train_progress(work_dir: str,
                   extra_logs: tuple[str, ...] = ()) -> float | None:
    """Fraction of training done by a running run: its last
    ``Iter(train) [i/N]`` (or ``Epoch(train)``) line in the newest text log
    of the work dir, else in ``extra_logs`` (file names in the work dir,
    e.g. a captured stdout); None if unknown."""
    logs = [osp.join(d, osp.basename(d) + '.log')
            for d in timestamp_dirs(work_dir)[-1:]]
    for log in logs + [osp.join(work_dir, name) for name in extra_logs]:
        try:
            with open(log, 'rb') as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 20000))
                tail = f.read().decode('utf-8', 'replace')
        except OSError:
            continue
        hits = _ITER.findall(tail)
        if hits:
            i, n = map(int, hits[-1])
            return min(i / n, 1.0) if n else None
    return None
