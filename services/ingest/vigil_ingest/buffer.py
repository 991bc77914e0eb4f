"""The small bounded queue between a camera's decoder and its publisher."""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FrameBuffer(Generic[T]):
    """Holds at most ``capacity`` frames of one camera, so memory stays bounded whatever Kafka does.

    A live source does not wait for us, so ``put_latest`` never blocks: when the buffer is full
    it drops the oldest frame and returns it (the caller counts it), because a fresh frame is
    worth more than a stale one. A file read as fast as possible loses nothing by waiting, so
    ``put_wait`` blocks for room instead. ``close`` marks the end of the source: the publisher
    drains what is left and then sees ``drained``.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a frame buffer holds at least one frame")
        self._items: deque[T] = deque()
        self._capacity = capacity
        self._changed = threading.Condition()
        self._closed = False

    def put_latest(self, item: T) -> T | None:
        """Append ``item``; returns the oldest frame it displaced, if the buffer was full."""
        with self._changed:
            dropped = self._items.popleft() if len(self._items) >= self._capacity else None
            self._items.append(item)
            self._changed.notify_all()
            return dropped

    def put_wait(self, item: T, *, timeout: float) -> bool:
        """Append ``item`` once there is room; False if none came within ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._items) < self._capacity, timeout):
                return False
            self._items.append(item)
            self._changed.notify_all()
            return True

    def get(self, *, timeout: float) -> T | None:
        """The oldest frame, or None if none came within ``timeout`` (or the buffer is drained)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._items or self._closed, timeout):
                return None
            if not self._items:
                return None
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def clear(self) -> int:
        """Discard every frame; returns how many there were."""
        with self._changed:
            count = len(self._items)
            self._items.clear()
            self._changed.notify_all()
            return count

    @property
    def drained(self) -> bool:
        with self._changed:
            return self._closed and not self._items

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)
