"""A byte limit that a ``with`` block can lower for its own thread: the
GEMM chunk of :mod:`.hard_im2col` and the backward buffer of
:mod:`.triton_pad`."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

__all__ = ['ScopedLimit']


class ScopedLimit:
    """A per-thread stack of limits over a default.

    Args:
        default: returns the limit outside any :meth:`scope` (read at each
            :meth:`current`, so a module constant it returns may be
            changed at run time).
    """

    def __init__(self, default: Callable[[], int]) -> None:
        self._default = default
        self._local = threading.local()

    def current(self) -> int:
        """The innermost :meth:`scope`'s limit of this thread, else the
        default."""
        stack = getattr(self._local, 'stack', None)
        return stack[-1] if stack else self._default()

    @contextlib.contextmanager
    def scope(self, nbytes: int) -> Iterator[None]:
        """Within the block (this thread), the limit is ``nbytes``, a
        positive int."""
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or \
                nbytes < 1:
            raise ValueError(
                f'nbytes must be a positive int, got {nbytes!r}')
        stack = getattr(self._local, 'stack', None)
        if stack is None:
            stack = self._local.stack = []
        stack.append(nbytes)
        try:
            yield
        finally:
            stack.pop()
