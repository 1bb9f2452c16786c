"""Aggregation chains: the ordered PAD layers that pass h^(l-1) on."""
from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from torch import Tensor

__all__ = ['PADChain', 'PADChainError', 'link_chain', 'ChainMember']


class PADChainError(RuntimeError):
    """The layers of an aggregation chain cannot pass h^(l-1) on: they ran
    out of chain order, or see inputs of different batches."""


class PADChain:
    """Carries h^{l-1} between the ordered PAD layers of one chain during
    one forward pass. The first layer always starts from h = 0 and the last
    one clears the state, so nothing leaks between forward passes.

    The state is kept per thread: ``nn.DataParallel`` replicas (which
    share this object and run in one thread each) and threads sharing one
    model for inference each carry their own h^{l-1}.
    """

    def __init__(self, name: str, length: int) -> None:
        self.name = name
        self.length = length
        # thread id -> (h, step)
        self._state: dict[int, tuple[Tensor | None, int]] = {}

    def pending(self) -> Tensor | None:
        """h^(l-1) the calling thread's forward pass left for the next
        layer (None between passes: the last layer cleared it)."""
        return self._state.get(threading.get_ident(), (None, -1))[0]

    @property
    def pending_threads(self) -> int:
        """How many threads have a forward pass of this chain under way
        (0 between passes: nothing is left behind)."""
        return len(self._state)

    def read(self, index: int) -> Tensor | None:
        """h^(index-1) for layer ``index`` (None for the first layer)."""
        key = threading.get_ident()
        if index == 0:
            if len(self._state) > 1:  # drop what dead threads left behind
                alive = {t.ident for t in threading.enumerate()}
                for k in [k for k in self._state if k not in alive]:
                    self._state.pop(k, None)
            self._state.pop(key, None)
            return None
        h, step = self._state.get(key, (None, -1))
        if step != index - 1:
            raise PADChainError(
                f'PAD chain {self.name!r}: layer {index} ran before layer '
                f'{index - 1} in this forward pass; the layers of a chain '
                'must run in chain order (activation checkpointing that '
                're-runs a chain layer is not supported)')
        return h

    def write(self, index: int, h: Tensor) -> None:
        """Layer ``index`` passes its priors h [N, D, H, W] on."""
        key = threading.get_ident()
        if index == self.length - 1:
            self._state.pop(key, None)
        else:
            self._state[key] = (h, index)

    def __repr__(self) -> str:
        return f'PADChain(name={self.name!r}, length={self.length})'


class ChainMember(Protocol):
    """What :func:`link_chain` needs of a layer (``PADConv2d`` is one)."""

    adaptive: bool
    aggregation: str
    dilations: tuple[int, ...]

    def join_chain(self, chain: PADChain, index: int) -> None:
        ...


def link_chain(layers: Sequence[ChainMember],
               name: str = 'chain') -> PADChain:
    """Link PAD layers, in forward order, into one aggregation chain.

    All layers must be adaptive and share ``aggregation`` and the number of
    dilation options D (h^{l-1} has D channels).
    """
    if len(layers) == 0:
        raise ValueError(f'chain {name!r}: layers must not be empty')
    first = layers[0]
    for i, layer in enumerate(layers):
        if not getattr(layer, 'adaptive', False) or \
                not hasattr(layer, 'join_chain'):
            raise ValueError(f'chain {name!r}: layer {i} ({layer!r}) is not '
                             'an adaptive PADConv2d')
        if layer.aggregation != first.aggregation:
            raise ValueError(
                f'chain {name!r}: all layers need the same aggregation, '
                f'layer 0 has {first.aggregation!r}, layer {i} has '
                f'{layer.aggregation!r}')
        if len(layer.dilations) != len(first.dilations):
            raise ValueError(
                f'chain {name!r}: incompatible layers: layer 0 has '
                f'{len(first.dilations)} dilation options, layer {i} has '
                f'{len(layer.dilations)}; h^(l-1) must have the same D')
    chain = PADChain(name, len(layers))
    for i, layer in enumerate(layers):
        layer.join_chain(chain, i)
    return chain
