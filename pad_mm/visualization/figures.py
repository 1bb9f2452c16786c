"""Pictures of what the PAD layers learned (matplotlib + mmengine's
``Visualizer``), returned as RGB arrays so that they can go to any
visualizer backend (``add_image``) or to a PNG file.

Every grid figure has a fixed size: ``PANEL_PX`` square panels plus, where
there is one, a ``CBAR_PX`` wide colour-bar column (:func:`grid_size`).
"""
from __future__ import annotations

import os
import os.path as osp
from collections.abc import Sequence

import cv2
import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mmengine.visualization import Visualizer

from pad_mm.evaluation.evidence import truth_on_grid
from pad_mm.registry import FUNCTIONS

__all__ = [
    'PANEL_PX', 'CBAR_PX', 'DPI', 'grid_size', 'figure_to_array',
    'save_png', 'render_dilation_maps', 'render_dilation_histogram',
    'render_receptive_fields', 'render_activations', 'upscale',
    'render_sweep_figure'
]

PANEL_PX = 160
CBAR_PX = 70
DPI = 100
_TITLE_PX = 16
_MARGIN_PX = 3
DILATION_CMAP = 'viridis'


def grid_size(rows: int, cols: int, colorbar: bool = True) -> tuple[int,
                                                                    int]:
    """(width, height) in pixels of a ``rows`` x ``cols`` panel grid."""
    return cols * PANEL_PX + (CBAR_PX if colorbar else 0), rows * PANEL_PX


def _figure(width: int, height: int) -> Figure:
    """A figure of ``width`` x ``height`` pixels on its own Agg canvas
    (no pyplot, so the user's matplotlib backend is left alone)."""
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _grid(rows: int, cols: int, colorbar: bool):
    w, h = grid_size(rows, cols, colorbar)
    fig = _figure(w, h)
    axes = np.empty((rows, cols), dtype=object)
    for r in range(rows):
        for c in range(cols):
            left = (c * PANEL_PX + _MARGIN_PX) / w
            bottom = ((rows - r - 1) * PANEL_PX + _MARGIN_PX) / h
            ax = fig.add_axes([
                left, bottom, (PANEL_PX - 2 * _MARGIN_PX) / w,
                (PANEL_PX - 2 * _MARGIN_PX - _TITLE_PX) / h
            ])
            ax.set_xticks([])
            ax.set_yticks([])
            axes[r, c] = ax
    cax = None
    if colorbar:
        cax = fig.add_axes([(cols * PANEL_PX + 8) / w, 0.08, 14 / w, 0.8])
    return fig, axes, cax


def figure_to_array(fig: Figure) -> np.ndarray:
    """[H, W, 3] uint8 RGB of a matplotlib figure."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else \
        FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(image: np.ndarray, path: str) -> str:
    """Write an RGB array as PNG (creating the folder)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, np.ascontiguousarray(image[..., ::-1]),
                       [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f'could not write {path!r}')
    return path


def _short(name: str, limit: int = 24) -> str:
    for prefix in ('backbone.', 'model.'):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name if len(name) <= limit else '...' + name[-(limit - 3):]


def _title(ax, text: str) -> None:
    ax.set_title(text, fontsize=7, pad=2)


def render_dilation_maps(image: np.ndarray,
                         layers: Sequence[dict],
                         title: str | None = None,
                         truth: np.ndarray | None = None) -> np.ndarray:
    """Fig. 4 style: per PAD layer the expected dilation per pixel (top
    row) and the chosen (argmax) dilation (bottom row), next to the image,
    with one colour scale for all panels and a colour bar.

    With ``truth``, a "right dilation" column follows the image: top, the
    truth at the image's resolution; bottom, the truth at the centres of
    the first PAD layer's grid (what the chosen maps are compared with,
    :func:`pad_mm.evaluation.truth_on_grid`). Same colour scale as the
    chosen-dilation panels. A layer dict with ``agreement`` (the output of
    :func:`pad_mm.evaluation.summarize_agreement`) gets its overall
    agreement and the best constant choice's in the bottom panel's title.

    Args:
        image: [H, W, 3] uint8 RGB as the model saw it.
        layers: dicts with ``name``, ``expected`` [h, w] float,
            ``chosen`` [h, w] and ``dilations`` (absolute options).
        title: optional text in the image panel's title.
        truth: optional [H, W] right dilation per image pixel.

    Returns:
        RGB array of size :func:`grid_size` (2, 1 + len(layers)), one
        column more with ``truth``.
    """
    if not layers:
        raise ValueError('render_dilation_maps needs at least one layer')
    h, w = image.shape[:2]
    opts = {d for lay in layers for d in lay['dilations']}
    if truth is not None:
        truth = np.asarray(truth)
        if truth.shape != (h, w):
            raise ValueError(f'render_dilation_maps: the truth is '
                             f'{truth.shape[0]}x{truth.shape[1]}, the image '
                             f'{h}x{w}')
        opts |= {int(t) for t in np.unique(truth)}
    opts = sorted(opts)
    vmin, vmax = min(opts), max(opts)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    first = 1 if truth is None else 2
    fig, axes, cax = _grid(2, first + len(layers), True)
    axes[0, 0].imshow(image)
    _title(axes[0, 0], title or 'image')
    axes[1, 0].imshow(image)
    _title(axes[1, 0], 'top: E[d]  bottom: argmax')
    style = dict(cmap=DILATION_CMAP, vmin=vmin, vmax=vmax,
                 interpolation='nearest', extent=(0, w, h, 0))
    if truth is not None:
        grid = np.asarray(layers[0]['chosen']).shape
        axes[0, 1].imshow(truth.astype(float), **style)
        _title(axes[0, 1], 'right dilation')
        axes[1, 1].imshow(truth_on_grid(truth, grid).astype(float), **style)
        _title(axes[1, 1], f'right d, {grid[0]}x{grid[1]} grid')
    im = None
    for c, lay in enumerate(layers, start=first):
        for r, key in ((0, 'expected'), (1, 'chosen')):
            im = axes[r, c].imshow(np.asarray(lay[key], dtype=float),
                                   **style)
            _title(axes[r, c], _short(lay['name']))
        agree = lay.get('agreement')
        if agree:
            _title(axes[1, c], f'agree {agree["agree"]:.0%}, const '
                   f'{agree["agree_const"]:.0%}')
    cb = fig.colorbar(im, cax=cax, ticks=opts)
    cb.set_label('dilation', fontsize=7)
    cb.ax.tick_params(labelsize=7)
    return figure_to_array(fig)


HIST_SIZE = (640, 320)


@FUNCTIONS.register_module('pad_dilation_histogram')
def render_dilation_histogram(stats: dict[str, dict],
                              title: str = '') -> np.ndarray:
    """Bar chart: fraction of pixels choosing each dilation, per layer,
    with sigma^2(d) and the mean dilation in the labels.

    Args:
        stats: :func:`pad_mm.evaluation.summarize_dilation_stats` output.

    Returns:
        RGB array of ``HIST_SIZE`` (width, height).
    """
    layers = [(n, s) for n, s in stats.items() if n != 'all']
    if not layers:
        raise ValueError('render_dilation_histogram: no layer statistics')
    opts = sorted({d for _, s in layers for d in s['dilations']})
    fig = _figure(*HIST_SIZE)
    ax = fig.add_axes([0.09, 0.2, 0.73, 0.7])
    width = 0.8 / len(opts)
    cmap = matplotlib.colormaps[DILATION_CMAP]
    x = np.arange(len(layers))
    for k, d in enumerate(opts):
        vals = [dict(zip(s['dilations'], s['hist'])).get(d, 0.0)
                for _, s in layers]
        ax.bar(x + (k - (len(opts) - 1) / 2) * width, vals, width,
               label=f'd={d}',
               color=cmap(k / max(len(opts) - 1, 1)))
    ax.set_xticks(x)
    ax.set_xticklabels([
        f'{_short(n, 18)}\nE={s["mean"]:.2f} '
        f'$\\sigma^2$={s["var"]:.2g}' for n, s in layers
    ], fontsize=6, rotation=0)
    ax.set_ylim(0, 1)
    ax.set_ylabel('fraction of pixels', fontsize=7)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title, fontsize=8)
    return figure_to_array(fig)


def upscale(image: np.ndarray, size: int = 256) -> tuple[np.ndarray, int]:
    """Nearest-neighbour integer upscaling so the short side is at least
    ``size``; returns (image, factor)."""
    f = max(1, int(np.ceil(size / min(image.shape[:2]))))
    return np.ascontiguousarray(image.repeat(f, 0).repeat(f, 1)), f


def _overlay(image: np.ndarray, heat: np.ndarray | None,
             alpha: float = 0.5) -> np.ndarray:
    """Heat map [h, w] over the image with mmengine's Visualizer."""
    if heat is None:
        return image
    t = torch.as_tensor(np.asarray(heat, dtype=np.float32))[None]
    return Visualizer.draw_featmap(
        t, overlaid_image=image, channel_reduction='squeeze_mean',
        resize_shape=image.shape[:2], alpha=alpha)


def render_receptive_fields(rows: Sequence[dict]) -> np.ndarray:
    """Fig. 3 style: ERF (heat map over the grey image), RF (sampled
    positions, white patches) and the unit's pixel (red dot) at chosen
    pixels, one row per model.

    Args:
        rows: one dict per model with ``label``, ``image`` [H, W, 3] uint8,
            and ``units``: a list of dicts with ``pixel`` (x, y in image
            pixels), ``rf_cells`` (list of [x0, y0, x1, y1] boxes in image
            pixels) and ``erf`` [H, W] (or None).

    Returns:
        RGB array of size :func:`grid_size` (rows, units, colorbar=False).
    """
    cols = max(len(r['units']) for r in rows)
    fig, axes, _ = _grid(len(rows), cols, False)
    vis = Visualizer()
    for r, row in enumerate(rows):
        big, f = upscale(row['image'])
        grey = np.repeat(big.mean(2, keepdims=True), 3, 2).astype(np.uint8)
        for c in range(cols):
            ax = axes[r, c]
            if c >= len(row['units']):
                ax.axis('off')
                continue
            unit = row['units'][c]
            erf = unit.get('erf')
            canvas = _overlay(grey, None if erf is None else
                              np.asarray(erf).repeat(f, 0).repeat(f, 1),
                              alpha=0.6)
            vis.set_image(canvas)
            mask = np.zeros(big.shape[:2], bool)
            for x0, y0, x1, y1 in unit['rf_cells']:
                mask[int(round(y0 * f)):int(round(y1 * f)),
                     int(round(x0 * f)):int(round(x1 * f))] = True
            if mask.any():
                vis.draw_binary_masks(mask, colors='white', alphas=0.35)
            x, y = unit['pixel']
            vis.draw_points(torch.tensor([[x * f + f / 2, y * f + f / 2]]),
                            colors='red', sizes=np.array([30]))
            ax.imshow(vis.get_image())
            _title(ax, f'{row["label"]} @ ({x},{y}): '
                   f'{len(unit["rf_cells"])} pos.')
    return figure_to_array(fig)


def render_activations(rows: Sequence[dict]) -> np.ndarray:
    """Fig. 5 / 11 style: one row per model: the image, the channel-mean
    activation over it (mmengine ``draw_featmap``) and the fraction of
    channels active (> 0) at each pixel (shared 0..1 colour bar).

    Args:
        rows: dicts with ``label``, ``image`` [H, W, 3] uint8 and
            ``featmap`` [C, h, w] tensor.

    Returns:
        RGB array of size :func:`grid_size` (len(rows), 3).
    """
    fig, axes, cax = _grid(len(rows), 3, True)
    im = None
    for r, row in enumerate(rows):
        big, _ = upscale(row['image'])
        feat = torch.as_tensor(row['featmap']).float()
        axes[r, 0].imshow(big)
        _title(axes[r, 0], row['label'])
        axes[r, 1].imshow(Visualizer.draw_featmap(
            feat, overlaid_image=big, channel_reduction='squeeze_mean',
            resize_shape=big.shape[:2], alpha=0.5))
        _title(axes[r, 1], 'mean activation')
        active = (feat > 0).float().mean(0).numpy()
        im = axes[r, 2].imshow(active, cmap='magma', vmin=0, vmax=1,
                               interpolation='nearest')
        _title(axes[r, 2], f'active {active.mean():.2f}')
    cb = fig.colorbar(im, cax=cax)
    cb.set_label('fraction of channels > 0', fontsize=7)
    cb.ax.tick_params(labelsize=7)
    return figure_to_array(fig)


def render_sweep_figure(summary: dict, path: str) -> str:
    """PNG of a sweep's metric per config (the summary of
    :func:`pad_mm.evaluation.sweep_summary.summarise`): each seed a dot,
    mean +- std as an error bar, the first baseline's mean as a dashed
    line. Returns ``path``."""
    configs = summary['configs']
    fig = Figure(figsize=(max(4.0, 1.1 * len(configs) + 1.5), 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, e in enumerate(configs):
        vals = list(e['values'].values())
        k = len(vals)
        xs = [i + (j - (k - 1) / 2) * 0.08 for j in range(k)]
        ax.scatter(xs, vals, s=16, color='tab:blue', alpha=0.7, zorder=3,
                   label='seed' if i == 0 else None)
        if e['n']:
            std = 0.0 if np.isnan(e['std']) else e['std']
            ax.errorbar([i + 0.25], [e['mean']], yerr=[std], fmt='o',
                        color='black', capsize=4, zorder=4,
                        label='mean ± std' if i == 0 else None)
    base = summary['baseline']
    if base is not None:
        b = next(e for e in configs if e['name'] == base)
        if b['n']:
            ax.axhline(b['mean'], color='gray', ls='--', lw=1,
                       label=f'{base} mean')
    ax.set_xticks(range(len(configs)))
    ax.set_xticklabels([e['name'] for e in configs], rotation=30,
                       ha='right')
    ax.set_ylabel(summary['metric'])
    ax.set_title(f'{summary["metric"]} per config '
                 f'({summary["runs_finished"]}/{summary["runs_total"]} runs)')
    ax.grid(axis='y', alpha=0.3)
    # outside the axes: inside, it can hide a seed's dot
    ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=120, format='png', bbox_inches='tight')
    return path
