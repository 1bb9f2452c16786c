"""Gumbel-Softmax sampling of dilation probabilities (eq. 2 of the paper).

Torch-only. All arithmetic is done in at least float32 whatever the input dtype, so
that fp16/bf16 logits never produce ``log(0)``, ``inf`` or ``nan``; the result
is cast back to the dtype of ``logits``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ['gumbel_noise', 'gumbel_softmax', 'hard_probs', 'check_tau']


def check_tau(tau: float, name: str = 'tau') -> float:
    """Validate a Gumbel-Softmax temperature and return it as a float.

    Raises:
        ValueError: if ``tau`` is not a finite number > 0.
    """
    if isinstance(tau, bool) or not isinstance(tau, (int, float)):
        raise TypeError(f'{name} must be a finite number > 0, '
                        f'got {tau!r} of type {type(tau).__name__}')
    tau = float(tau)
    if not math.isfinite(tau) or tau <= 0:
        raise ValueError(f'{name} must be a finite number > 0, got {tau!r}')
    return tau


def gumbel_noise(shape: torch.Size | tuple[int, ...],
                 device: torch.device | str | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
    """i.i.d. Gumbel(0, 1) samples in float32, always finite.

    ``u ~ U(0, 1)`` is drawn in float32 and kept inside
    ``[tiny, 1 - eps]`` so that ``-log(-log(u))`` is finite
    (its range is about [-4.5, 88.7]).
    """
    u = torch.rand(shape, device=device, dtype=torch.float32,
                   generator=generator)
    finfo = torch.finfo(torch.float32)
    u = u.clamp_(min=finfo.tiny, max=1.0 - finfo.eps)
    return -torch.log(-torch.log(u))


def hard_probs(logits: Tensor, dim: int = 1) -> Tensor:
    """One-hot of ``argmax(logits, dim)`` in the dtype of ``logits``.

    Shapes: ``logits`` [N, D, H, W] -> [N, D, H, W].
    """
    index = logits.argmax(dim=dim, keepdim=True)
    return torch.zeros_like(logits).scatter_(dim, index, 1.0)


def gumbel_softmax(logits: Tensor,
                   tau: float = 1.0,
                   hard: bool = False,
                   noise: bool = True,
                   dim: int = 1,
                   generator: torch.Generator | None = None) -> Tensor:
    """Relaxed one-hot sample over the dilation axis (eq. 2).

    ``d = softmax((h + g) / tau)`` with ``g ~ Gumbel(0, 1)``.

    Args:
        logits: hidden priors ``h``, shape [N, D, H, W] (any float dtype).
        tau: temperature, finite and > 0.
        hard: straight-through: the forward value is the one-hot of the
            argmax, the gradient is that of the soft sample.
        noise: add Gumbel noise; ``False`` gives the plain softmax
            ``softmax(h / tau)``.
        dim: the dilation axis.
        generator: optional RNG for the noise.

    Returns:
        Probabilities of shape [N, D, H, W] and the dtype of ``logits``,
        summing to 1 over ``dim``.
    """
    tau = check_tau(tau)
    # float32 for half types, float64 stays float64
    y = logits.to(torch.promote_types(logits.dtype, torch.float32))
    if noise:
        y = y + gumbel_noise(y.shape, device=y.device,
                             generator=generator).to(y.dtype)
    # shift the maximum to 0 before dividing: no inf from y / tau however
    # small tau is (the softmax itself is shift invariant)
    y = torch.softmax((y - y.amax(dim, keepdim=True).detach()) / tau,
                      dim=dim)
    if hard:
        y = hard_probs(y, dim=dim) - y.detach() + y
    return y.to(logits.dtype)
