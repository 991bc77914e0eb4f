"""Exponential backoff with jitter, for reopening a source that failed."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays that double from ``initial_s`` up to ``max_s``, each shortened by up to ``jitter``.

    The jitter spreads the retries of many cameras behind one failed recorder or switch, so they
    do not all reconnect in the same instant when it comes back. No delay exceeds ``max_s``.
    """

    def __init__(
        self,
        *,
        initial_s: float,
        max_s: float,
        jitter: float = 0.2,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError(f"need 0 < initial_s <= max_s, got {initial_s} and {max_s}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter is a fraction between 0 and 1, got {jitter}")
        self._initial_s = initial_s
        self._max_s = max_s
        self._jitter = jitter
        self._rand = rand
        self._next_s = initial_s

    def next_delay(self) -> float:
        delay = self._next_s * (1.0 - self._jitter * self._rand())
        self._next_s = min(self._max_s, self._next_s * 2)
        return delay

    def reset(self) -> None:
        """The source works again: the next fault starts from ``initial_s``."""
        self._next_s = self._initial_s
