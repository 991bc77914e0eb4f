"""At most a few dataset versions built in memory at once, per API process.

A version is built whole before anything is stored, so that a refused one stores nothing: an
upload expands its archive (up to ``archive_max_uncompressed_bytes``, 2 GiB by default), a
build from a camera or from reviewed events (and a retrain, which does both) reads up to
``dataset_max_frames`` frames, a composition reads its parts' images. Each is bounded on its
own; several at once are not, and a handful of large uploads together would take the API
process down, and every request it serves with it. So each build holds a slot while it reads
and stores; one that finds none free within ``wait_s`` is answered 503 with ``Retry-After``,
having read and stored nothing (an upload's body is spooled to disk before it waits).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from prometheus_client import Counter, Gauge

from vigil_api.core.auth import FleetOperatorDep, OperatorDep

BUILDING = Gauge("vigil_api_version_builds", "Dataset versions being built now, in this process")
REFUSED = Counter(
    "vigil_api_version_builds_refused", "Dataset version builds answered 503: no slot freed in time"
)


class BuildSlots:
    """``size`` slots; ``held`` waits up to ``wait_s`` for one. Thread-safe: builds run on the
    server's worker threads."""

    def __init__(self, size: int, wait_s: float) -> None:
        if size < 1:
            raise ValueError(f"at least one build slot, not {size}")
        self.size = size
        self.wait_s = wait_s
        self._free = threading.BoundedSemaphore(size)

    @contextmanager
    def held(self) -> Iterator[None]:
        """A slot for the block, or a 503 (``Retry-After``) when none frees within ``wait_s``.
        Blocks its thread while it waits: call it on a worker thread, not the event loop."""
        if not self._free.acquire(timeout=self.wait_s):
            detail = (
                f"dataset versions are being built in all {self.size} slots; retry in a few "
                "seconds (VIGIL_API_VERSION_BUILDS_AT_ONCE)"
            )
            retry = str(max(1, math.ceil(self.wait_s)))
            REFUSED.inc()
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail, {"Retry-After": retry})
        BUILDING.inc()
        try:
            yield
        finally:
            BUILDING.dec()
            self._free.release()


def slots_of(request: Request) -> BuildSlots:
    slots: BuildSlots = request.app.state.build_slots
    return slots


def hold_build_slot(request: Request, _: OperatorDep) -> Iterator[None]:
    """A build's slot for the whole request, taken once the key is known to be an operator's
    (a viewer's is refused without waiting). FastAPI runs it on a worker thread, where waiting
    blocks nothing else."""
    with slots_of(request).held():
        yield


def hold_fleet_build_slot(request: Request, _: FleetOperatorDep) -> Iterator[None]:
    """The same, for a route only a fleet-wide operator may call (a retrain): a camera-scoped
    key is refused without waiting."""
    with slots_of(request).held():
        yield


BuildSlotsDep = Annotated[BuildSlots, Depends(slots_of)]
BUILD_SLOT = Depends(hold_build_slot)
"""A route's ``dependencies`` entry: the route builds a dataset version in memory."""
FLEET_BUILD_SLOT = Depends(hold_fleet_build_slot)
"""The same, for a fleet-wide operator's route."""
