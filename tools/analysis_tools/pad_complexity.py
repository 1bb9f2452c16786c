"""Model complexity of regular vs PAD models (Table 6, right half).

    python tools/analysis_tools/pad_complexity.py CONFIG [CONFIG ...] \
        [--out complexity.csv] [--cfg-options KEY=VALUE ...]

For every config the model (``cfg.model``, in the config's
``default_scope``) is built and its parameters are split into

* ``p#``: the parameters of the network without its PAD priors, i.e. the
  regular model (converting a conv to a PAD layer keeps its weights);
* ``dp#``: the parameters the PAD layers add, the ``*.prior.*`` tensors of
  the adaptive ``PADConv2d`` layers (Markov aggregation: ``D * C_in``
  weights + ``D`` biases per layer; recurrent/gated add ``W_h``/``U_a``/
  ``W_a``);
* ``dp#/p# (%)``.

Prints a table and, with ``--out``, writes the same rows as CSV
(``config, model, p, dp, dp_over_p_percent, pad_layers``; counts as
integers). A regular config has ``dp# = 0``; its ``p#`` equals the
``p#`` of its PAD counterpart.
"""
from __future__ import annotations

import argparse
import csv
import os.path as osp
import sys

_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if osp.isdir(osp.join(_ROOT, 'pad_mm')):  # a source checkout, not .mim/
    sys.path.insert(0, _ROOT)

import torch.nn as nn  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import MODELS, init_default_scope  # noqa: E402

from pad_mm.apis import load_config  # noqa: E402
from pad_mm.models import pad_layers  # noqa: E402

FIELDS = ('config', 'model', 'p', 'dp', 'dp_over_p_percent', 'pad_layers')


def count_pad_params(model: nn.Module) -> dict:
    """Split the parameters of ``model`` into regular and PAD-prior ones.

    Returns a dict with ``p`` (parameters without PAD priors), ``dp``
    (PAD prior parameters), ``dp_over_p_percent`` and ``pad_layers`` (names
    of the adaptive PAD layers, in module order).
    """
    names, dp = [], 0
    for name, m in pad_layers(model):
        names.append(name)
        dp += sum(p.numel() for p in m.prior.parameters())
    total = sum(p.numel() for p in model.parameters())
    p = total - dp
    return dict(p=p, dp=dp, dp_over_p_percent=100.0 * dp / p,
                pad_layers=names)


def config_complexity(config: str, cfg_options: dict | None = None) -> dict:
    """Build the model of ``config`` and count it (see
    :func:`count_pad_params`); adds ``config`` and ``model`` (the backbone
    type, ``PADBackbone(<base_type>)`` for PAD models)."""
    cfg = load_config(config)  # pad_mm registered for its task
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    if scope is None:
        raise ValueError(f'{config}: default_scope must be set (mmpretrain '
                         'or mmseg) to build its model')
    init_default_scope(scope)
    backbone = cfg.model.get('backbone', {})
    kind = backbone.get('type', type(None).__name__)
    if kind == 'PADBackbone':
        kind = f"PADBackbone({backbone.get('base_type')})"
    model = MODELS.build(cfg.model)
    row = dict(config=osp.splitext(osp.basename(config))[0], model=kind)
    row.update(count_pad_params(model))
    del model
    return row


def _human(n: int) -> str:
    if n >= 1e6:
        return f'{n / 1e6:.2f}M'
    if n >= 1e3:
        return f'{n / 1e3:.2f}K'
    return str(n)


def format_table(rows: list[dict]) -> str:
    """The rows as a fixed-width text table."""
    head = ('config', 'model', 'p#', 'dp#', 'dp#/p# (%)', 'PAD layers')
    body = [(r['config'], r['model'], f"{_human(r['p'])} ({r['p']:,})",
             f"{_human(r['dp'])} ({r['dp']:,})",
             f"{r['dp_over_p_percent']:.4f}", str(len(r['pad_layers'])))
            for r in rows]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(6)]
    line = '  '.join('{:<%d}' % w for w in widths)
    out = [line.format(*head), line.format(*('-' * w for w in widths))]
    out += [line.format(*r) for r in body]
    return '\n'.join(out)


def write_csv(rows: list[dict], path: str) -> None:
    """Write ``rows`` to ``path`` (columns ``FIELDS``; ``pad_layers`` as a
    ';'-joined list of module names)."""
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow(dict(
                r, dp_over_p_percent=f"{r['dp_over_p_percent']:.10g}",
                pad_layers=';'.join(r['pad_layers'])))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='p#, dp# and dp#/p# of regular and PAD models')
    parser.add_argument('configs', nargs='+', metavar='CONFIG')
    parser.add_argument('--out', help='write the rows to this CSV file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys (applied to every '
                        'config), e.g. model.head.num_classes=1000')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    missing = [c for c in args.configs if not osp.isfile(c)]
    if missing:
        raise FileNotFoundError(f'config file(s) not found: {missing}')
    rows = [config_complexity(c, args.cfg_options) for c in args.configs]
    print(format_table(rows))
    if args.out:
        write_csv(rows, args.out)
        print(f'wrote {args.out}')
    return rows


if __name__ == '__main__':
    from pad_mm.utils.cli import exit_if_shadowed  # noqa: E402
    exit_if_shadowed()  # a folder named pad_mm here shadows the package
    main()
