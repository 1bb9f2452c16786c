"""On PAD-Evidence, reduced, a small stack of PAD layers trained a few
hundred steps on the segmentation labels alone makes a hard choice that
agrees with the right dilation of the pixels clearly more often than the
best constant choice does. One thread, seconds.

Reduced size: the evidence configs' data ('pairs' texture, aligned cells)
rendered at map resolution (stride 1: one pixel per cell, pixel noise 1/4
of the configs', which a 4x4 patch stem averages over 16 pixels), 32x32
maps, and the evidence configs' backbone (``PatchConvNet``) with a 1x1
stem, three 3x3 blocks made PAD by layer name, the 7x7 average pool and
a 1x1 head. The PAD layers use the default settings (f, margin) of the
default aggregation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import pad_mm.models.backbones  # noqa: F401  (registers PatchConvNet)
from pad_mm.datasets import render_evidence_sample
from pad_mm.evaluation import recording
from pad_mm.evaluation.evidence import agreement_counts, summarize_agreement
from pad_mm.models import PADConv2d, convert_to_pad
from pad_mm.models.backbones import PatchConvNet

SIZE, OPTIONS = 32, (1, 2, 4)


def _data(seed: int, n: int):
    rng = np.random.default_rng(seed)
    xs, ys, ts = [], [], []
    for _ in range(n):
        img, lab, dil = render_evidence_sample(
            rng, size=SIZE, stride=1, dilations=OPTIONS, min_regions=3,
            max_regions=4, noise=0.025, texture='pairs', align_cells=True)
        xs.append(img)
        ys.append(lab)
        ts.append(dil)
    x = torch.tensor(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, torch.tensor(np.stack(ys)).long(), np.stack(ts)


class _Net(nn.Module):

    def __init__(self, c: int = 32, classes: int = 4):
        super().__init__()
        self.backbone = PatchConvNet(channels=c, patch_size=1, num_convs=3,
                                     pool=3)
        convert_to_pad(self.backbone, dict(layers=['convs.*.conv'],
                                           dilations=OPTIONS))
        self.head = nn.Conv2d(c, classes, 1)

    def forward(self, x):
        return self.head(self.backbone(x)[0])


def _agreement(maps, truth):
    out = {}
    for name, (_, probs) in maps.items():
        chosen = torch.as_tensor(OPTIONS)[probs.argmax(1)].numpy()
        counts = {}
        for c, t in zip(chosen, truth):
            for k, (a, n) in agreement_counts(c, t).items():
                a0, n0 = counts.get(k, (0, 0))
                counts[k] = (a0 + a, n0 + n)
        out[name] = summarize_agreement(counts, OPTIONS)
    return out


# Fails today (measured 2026-12-07, this test's settings, one thread): the
# stack learns the segmentation (pixel accuracy 0.39 after 400 steps, 0.58
# after 1400, chance 0.25; fixed dilations reach 0.47-0.50 after 1500 in
# the same setting), but the hard choices do not follow the right
# dilation: after 400 steps every layer is still at its initial d = 1
# (agreement 0.31, best constant 0.38); after 1400 the first layer stays at
# d = 1 (its 1x1 prior sees one cell), the second puts 86% of the d = 4
# pixels and 78% of the d = 1 pixels on d = 4 (agreement 0.40 against
# 0.38), the third 0.36. See configs/demo/evidence/README.md for the
# sweep. strict: an XPASS fails the run, so the marker goes when it passes.
@pytest.mark.xfail(strict=True, reason='the PAD layers\' hard choices do '
                   'not follow the right dilation in this reduced setting '
                   '(agreement within 0.02 of the best constant choice)')
def test_pad_choice_follows_the_right_dilation():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y, _ = _data(0, 256)
    xv, yv, tv = _data(1, 32)
    net = _Net()
    pads = [m for m in net.modules() if isinstance(m, PADConv2d)]
    assert len(pads) == 3
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    steps = 400
    gen = torch.Generator().manual_seed(0)
    for it in range(steps):
        # PADTauHook's default exponential schedule, 1.0 -> 0.2
        for pad in pads:
            pad.tau = 1.0 * (0.2 / 1.0)**(it / (steps - 1))
        idx = torch.randint(0, len(x), (8, ), generator=gen)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad(), recording(net) as rec:
        logits = net(xv)
        maps = rec.maps()
    # the task itself is being learned (4 classes: chance is 0.25)
    acc = (logits.argmax(1) == yv).float().mean().item()
    assert acc > 0.32, f'segmentation not learned: pixel accuracy {acc:.3f}'
    stats = _agreement(maps, tv)
    for name, s in stats.items():
        print(name, {k: round(v, 3) for k, v in s.items()})
    best = max(s['agree'] - s['agree_const'] for s in stats.values())
    assert best > 0.10, stats
