"""Frames out of any source FFmpeg can open (files, RTSP, HTTP), sampled to a target rate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image


class SourceError(RuntimeError):
    """The camera or file could not be opened or read; the message names the source."""


@dataclass(frozen=True)
class SourceFrame:
    image: Image.Image
    offset_s: float  # seconds since the start of the source (pts), monotonic across loops


def _open(source: str) -> av.container.InputContainer:
    is_stream = "://" in source
    if not is_stream and not Path(source).is_file():
        raise SourceError(f"video file {source!r} does not exist")
    # RTSP over UDP: some cameras and servers refuse TCP-interleaved transport.
    options = {"rtsp_transport": "udp", "stimeout": "5000000"} if is_stream else {}
    try:
        return av.open(source, options=options, timeout=10.0)
    except (av.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot open {source!r}: {exc}") from exc


def iter_frames(source: str, *, fps: float, loop: bool = False) -> Iterator[SourceFrame]:
    """Decode ``source`` and yield frames spaced at least ``1/fps`` seconds of source time."""
    period = 1.0 / fps
    base = 0.0
    next_due = 0.0
    while True:
        last = 0.0
        with _open(source) as container:
            if not container.streams.video:
                raise SourceError(f"{source!r} has no video stream")
            stream = container.streams.video[0]
            try:
                for frame in container.decode(stream):
                    offset = base + (frame.time if frame.time is not None else last)
                    last = offset - base
                    if offset + 1e-6 < next_due:
                        continue
                    next_due = max(next_due + period, offset)
                    # PyAV's to_image() is untyped; it returns a PIL image.
                    image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
                    yield SourceFrame(image=image, offset_s=offset)
            except av.FFmpegError as exc:
                raise SourceError(f"reading {source!r} failed: {exc}") from exc
            duration = last + (1.0 / float(stream.average_rate) if stream.average_rate else period)
        if not loop:
            return
        base += duration


def pace(start_monotonic: float, offset_s: float) -> None:
    """Sleep until ``offset_s`` after ``start_monotonic`` so a file plays at its own speed."""
    delay = start_monotonic + offset_s - time.monotonic()
    if delay > 0:
        time.sleep(delay)
