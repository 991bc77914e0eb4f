"""Reads one camera into its buffer: open, reconnect with backoff, sample, pace, gate and cap.

The capture loop never touches Kafka, so a slow broker cannot stall the decoder: when the
publisher falls behind a live camera, the buffer drops the camera's oldest frames instead.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from vigil_ingest.backoff import Backoff
from vigil_ingest.buffer import FrameBuffer
from vigil_ingest.images import iter_images
from vigil_ingest.publisher import CapturedFrame
from vigil_ingest.settings import IngestSettings
from vigil_ingest.shaping import FrameShaper
from vigil_ingest.sources import SourceError, SourceFrame, kind_of, read_source
from vigil_ingest.status import CameraTracker
from vigil_ingest.video import StreamOptions, iter_frames
from vigil_shared.cameras.sources import CameraSource, SourceKind, redact
from vigil_shared.schemas.frames import utc_now

OpenFrames = Callable[[], Generator[SourceFrame, None, None]]
POLL_S = 0.2  # how often a wait for buffer room looks at the stop flag


@dataclass(frozen=True)
class Finish:
    """Why a camera stopped; ``failed`` when it was an error rather than an end or a stop."""

    reason: str
    failed: bool = False


def _open_video(source: CameraSource, settings: IngestSettings) -> OpenFrames:
    """A stream or video file, through FFmpeg; only a file loops."""
    options = StreamOptions(
        open_s=settings.open_timeout_s,
        read_s=settings.read_timeout_s,
        probe_s=settings.probe_s,
        rtsp_transport=settings.rtsp_transport,
    )
    loop = settings.loop and source.kind is SourceKind.FILE
    return lambda: iter_frames(source.text, fps=settings.fps, loop=loop, options=options)


def _open_images(source: CameraSource, settings: IngestSettings) -> OpenFrames:
    directory = Path(source.text)
    return lambda: iter_images(
        directory, fps=settings.fps, image_fps=settings.image_fps, loop=settings.loop
    )


Opener = Callable[[CameraSource, IngestSettings], OpenFrames]
OPENERS: Mapping[SourceKind, Opener] = {
    SourceKind.STREAM: _open_video,
    SourceKind.FILE: _open_video,
    SourceKind.DIRECTORY: _open_images,
}
"""How each kind of source that ingest reads (all but push, which is uploaded) is opened."""


def open_frames(settings: IngestSettings) -> OpenFrames:
    """How to (re)open the configured source; each call starts reading it afresh."""
    source = read_source(settings.source)
    opener = OPENERS.get(source.kind)
    if opener is None:
        raise SourceError(f"a {source.kind} source is not read by a capture loop")
    return opener(source, settings)


class CaptureLoop:
    """Reads one source until it ends (a file) or the stop flag is set.

    A live stream that cannot be opened, goes silent or ends is reopened after a backoff delay,
    and the camera is reported offline with the reason meanwhile; the stop flag cuts the delay
    short. A file or directory that ends is not a fault: the loop returns.
    """

    def __init__(
        self,
        *,
        source: str,
        open_frames: OpenFrames,
        buffer: FrameBuffer[CapturedFrame],
        tracker: CameraTracker,
        backoff: Backoff,
        shaper: FrameShaper,
        realtime: bool = True,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._name = redact(source)
        self._live = kind_of(source).live
        self._open_frames = open_frames
        self._buffer = buffer
        self._tracker = tracker
        self._backoff = backoff
        self._shaper = shaper
        self._realtime = realtime and not self._live  # a stream paces itself
        # A live camera, or a file played as one, does not wait for us: drop rather than block.
        self._drop_oldest = self._live or realtime
        self._clock = clock
        self._last_stamp: datetime | None = None

    def run(self, halt: threading.Event) -> Finish | None:
        """Read until the source ends; None when ``halt`` stopped it."""
        attempt = 0
        while not halt.is_set():
            if attempt:
                self._tracker.reconnecting()
            attempt += 1
            try:
                self._read(halt)
            except SourceError as exc:
                if not self._live:
                    return Finish(str(exc), failed=True)
                reason = str(exc)
            else:
                if halt.is_set():
                    break
                if not self._live:
                    return Finish("source ended")
                reason = f"{self._name} ended the stream"
            self._tracker.offline(reason)
            if halt.wait(self._backoff.next_delay()):
                break
        return None

    def _read(self, halt: threading.Event) -> None:
        with contextlib.closing(self._open_frames()) as frames:
            start_wall, start_mono = self._clock(), time.monotonic()
            first = True
            for frame in frames:
                if first:
                    self._tracker.online()
                    self._backoff.reset()
                    first = False
                if self._realtime:
                    delay = start_mono + frame.offset_s - time.monotonic()
                    if delay > 0 and halt.wait(delay):
                        return
                if halt.is_set():
                    return
                self._take(frame, self._stamp(start_wall, frame.offset_s), halt)

    def _stamp(self, start: datetime, offset_s: float) -> datetime:
        """Capture time: the wall clock for a stream (its timestamps restart on every reconnect),
        source time for a file; strictly increasing either way."""
        stamp = self._clock() if self._live else start + timedelta(seconds=offset_s)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            stamp = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = stamp
        return stamp

    def _take(self, frame: SourceFrame, captured_at: datetime, halt: threading.Event) -> None:
        self._tracker.frame_read(captured_at)
        image = self._shaper.shape(frame.image)
        if image is None:
            self._tracker.gated()
            return
        item = CapturedFrame(image, captured_at)
        if self._drop_oldest:
            if self._buffer.put_latest(item) is not None:
                self._tracker.dropped("buffer_full")
        else:
            while not self._buffer.put_wait(item, timeout=POLL_S):
                if halt.is_set():
                    return
        self._tracker.buffered(len(self._buffer))
