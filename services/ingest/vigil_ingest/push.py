"""Cameras that upload snapshots: each is a ``PushCapture`` fed by the push endpoint.

A push camera has no source to open: its capture loop only watches for silence (offline after
``timeout_s`` without an upload), and the endpoint hands it each decoded upload. From there on a
pushed frame is a frame like any other: masked, gated, capped, buffered, and published by the
camera's publish loop with the same headers, sequence numbers, status and metrics.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from PIL import Image

from vigil_ingest.buffer import FrameBuffer
from vigil_ingest.capture import POLL_S, Finish
from vigil_ingest.publisher import CapturedFrame
from vigil_ingest.shaping import FrameShaper
from vigil_ingest.status import CameraTracker
from vigil_shared.cameras.sources import hash_token
from vigil_shared.schemas.frames import utc_now

# Compared against when no camera matches, so an unknown camera costs the same time as a bad
# token and the answer's timing does not tell which push cameras exist.
_NO_TOKEN = hash_token("no camera takes this token")


class PushOutcome(StrEnum):
    QUEUED = "queued"  # buffered for publishing
    GATED = "gated"  # accepted, but the motion gate found nothing new in it
    BUSY = "busy"  # the camera's buffer is full: the caller should retry later


def token_matches(token: str, token_sha256: str) -> bool:
    """Whether ``token`` hashes to ``token_sha256``, in time independent of where they differ."""
    return hmac.compare_digest(hash_token(token), token_sha256)


class PushCapture:
    """The capture side of one push camera; ``offer`` is called from the endpoint's threads."""

    def __init__(
        self,
        *,
        token_sha256: str,
        buffer: FrameBuffer[CapturedFrame],
        tracker: CameraTracker,
        shaper: FrameShaper,
        timeout_s: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._token_sha256 = token_sha256
        self._buffer = buffer
        self._tracker = tracker
        self._shaper = shaper
        self._timeout_s = timeout_s
        self._clock = clock
        self._lock = threading.Lock()  # uploads may arrive together; stamps and the gate need order
        self._last_upload_mono: float | None = None
        self._last_stamp: datetime | None = None

    def authorised(self, token: str) -> bool:
        return token_matches(token, self._token_sha256)

    def run(self, halt: threading.Event) -> Finish | None:
        """Report the camera offline while it is silent, until ``halt``."""
        self._tracker.offline("waiting for the first upload")
        while not halt.wait(POLL_S):
            with self._lock:
                last = self._last_upload_mono
            if last is not None and time.monotonic() - last > self._timeout_s:
                self._tracker.offline(f"no upload for {self._timeout_s:g} s")
        return None

    def offer(self, image: Image.Image) -> PushOutcome:
        """Take one uploaded picture (already decoded and checked) for publishing."""
        with self._lock:
            self._last_upload_mono = time.monotonic()
            stamp = self._stamp()
            self._tracker.frame_read(stamp)
            self._tracker.online()
            shaped = self._shaper.shape(image)
            if shaped is None:
                self._tracker.gated()
                return PushOutcome.GATED
            if not self._buffer.put_wait(CapturedFrame(shaped, stamp), timeout=0):
                self._tracker.dropped("buffer_full")
                return PushOutcome.BUSY
            self._tracker.buffered(len(self._buffer))
            return PushOutcome.QUEUED

    def _stamp(self) -> datetime:
        """Arrival time, strictly increasing (two uploads in one clock tick stay in order)."""
        stamp = self._clock()
        if self._last_stamp is not None and stamp <= self._last_stamp:
            stamp = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = stamp
        return stamp


class PushRoutes:
    """Which push cameras run now; the fleet adds and removes them as definitions change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cameras: dict[str, PushCapture] = {}

    def add(self, camera_id: str, capture: PushCapture) -> None:
        with self._lock:
            self._cameras[camera_id] = capture

    def remove(self, camera_id: str, capture: PushCapture) -> None:
        """Remove ``capture`` if it is still the one routed (a restart may have replaced it)."""
        with self._lock:
            if self._cameras.get(camera_id) is capture:
                del self._cameras[camera_id]

    def authorise(self, camera_id: str, token: str) -> PushCapture | None:
        """The camera if it runs and ``token`` is its token; None for any other case alike."""
        with self._lock:
            capture = self._cameras.get(camera_id)
        if capture is None:
            token_matches(token, _NO_TOKEN)
            return None
        return capture if capture.authorised(token) else None
