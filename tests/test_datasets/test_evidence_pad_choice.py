"""On PAD-Evidence (reduced: 64x64 images, 16x16 maps) a small stack of PAD
layers trained a few hundred steps on the segmentation labels alone makes
a hard choice that agrees with the right dilation of the pixels clearly
more often than the best constant choice does. One thread, seconds.

The front end is a 4x4 stride-4 patch conv, so a map pixel is one texture
cell and a cell's partner of the same scale is exactly d map pixels away;
the head is 1x1. Only the PAD layers see across cells. The PAD layers use
the default settings (f, margin) of the default aggregation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pad_mm.datasets import render_evidence_sample
from pad_mm.evaluation import recording
from pad_mm.evaluation.evidence import (agreement_counts,
                                        summarize_agreement, truth_on_grid)
from pad_mm.models import PADConv2d

SIZE, STRIDE, OPTIONS = 64, 4, (1, 2, 4)


def _data(seed: int, n: int):
    rng = np.random.default_rng(seed)
    xs, ys, ts = [], [], []
    for _ in range(n):
        img, lab, dil = render_evidence_sample(
            rng, size=SIZE, stride=STRIDE, dilations=OPTIONS,
            min_regions=3, max_regions=4)
        xs.append(img)
        ys.append(lab)
        ts.append(dil)
    x = torch.tensor(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, torch.tensor(np.stack(ys)).long(), np.stack(ts)


class _Stack(nn.Module):

    def __init__(self, c: int = 16, layers: int = 3, classes: int = 4):
        super().__init__()
        self.front = nn.Sequential(nn.Conv2d(3, c, STRIDE, STRIDE),
                                   nn.BatchNorm2d(c), nn.ReLU())
        self.pads = nn.ModuleList(
            PADConv2d(c, c, 3, padding=1, dilations=OPTIONS)
            for _ in range(layers))
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) for _ in range(layers))
        self.head = nn.Conv2d(c, classes, 1)

    def forward(self, x):
        x = self.front(x)
        for pad, norm in zip(self.pads, self.norms):
            x = x + F.relu(norm(pad(x)))
        return F.interpolate(self.head(x), scale_factor=STRIDE,
                             mode='bilinear', align_corners=False)


# Fails today, for a reason before PAD's: at this reduced size the stack
# does not learn the segmentation itself (validation pixel accuracy
# 0.25-0.32 for 4 classes after 300-400 steps, with this patch front end,
# with a conv stem, and with 512 training images; measured 2026-12-07),
# so the layers have nothing to choose for; they collapse onto one
# dilation (agreement 0.42-0.44 against 0.42 for the constant choice).
# It needs a reduced setting that is learned in seconds (and then the
# learnable-scale default f of the previous issue). strict: an XPASS fails
# the run, so the marker goes when it passes.
@pytest.mark.xfail(strict=True, reason='the reduced task is not learned in '
                   '300 steps (accuracy at chance), so no dilation choice '
                   'can follow the truth yet')
def test_pad_choice_follows_the_right_dilation():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y, _ = _data(0, 64)
    xv, _, tv = _data(1, 16)
    net = _Stack()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    steps = 300
    for it in range(steps):
        tau = 1.0 * (0.2 / 1.0)**(it / (steps - 1))
        for pad in net.pads:
            pad.tau = tau
        idx = torch.randint(0, len(x), (8, ))
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad(), recording(net) as rec:
        logits = net(xv)
        maps = rec.maps()
    # first the task itself must be learned (4 classes: chance is 0.25)
    acc = (logits.argmax(1) == _data(1, 16)[1]).float().mean().item()
    assert acc > 0.5, f'segmentation not learned: pixel accuracy {acc:.3f}'

    best = None
    for name, (_, probs) in maps.items():
        chosen = torch.as_tensor(OPTIONS)[probs.argmax(1)].numpy()
        counts = {}
        for c, t in zip(chosen, tv):
            for k, (a, n) in agreement_counts(
                    c, truth_on_grid(t, c.shape)).items():
                a0, n0 = counts.get(k, (0, 0))
                counts[k] = (a0 + a, n0 + n)
        s = summarize_agreement(counts, OPTIONS)
        print(name, {k: round(v, 3) for k, v in s.items()})
        if best is None or s['agree'] - s['agree_const'] > best:
            best = s['agree'] - s['agree_const']
    assert best > 0.10
