"""Video files in a dataset archive: each one becomes a clip of JPEG frames with capture times.

An operator's normal footage is most often a recording (``normal/hall-monday.mp4``), and a
one_class fit reads a clip's frame rate from its frames' capture times: an image archive's
frames carry none and are taken at the spec's ``footage_fps``, so a wrong guess puts every
live flow out of scale. A video's own timestamps say it. Each frame's capture time is the
video's recorded creation time (its ``creation_time`` tag) plus the frame's presentation time
from the first frame; a file that records no creation time counts from ``UNDATED``, so the
same file always gives the same frames, times and dataset version.

A video is untrusted input like any entry: it is decoded here, in full, before anything is
stored; a file FFmpeg cannot open, one with no video stream or no decodable frame, a frame
without a timestamp, larger than the pixel limit, or more frames than the archive's entry limit
refuse it with the reason (``ValueError``), as a bad image does.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import av
from av.container import InputContainer
from PIL import Image

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts"})
UNDATED = datetime(1970, 1, 1, tzinfo=UTC)
"""Where an undated video's capture times count from (what the fit reads of them is the
rate, and the frames' order)."""
JPEG_QUALITY = 90
SLOT_TOLERANCE = 1e-3
"""Of a frame interval at the kept rate: a 30 fps timestamp that lands a hair before a 0.1 s
mark (rounding in the container's time base) still opens that slot."""


@dataclass(frozen=True)
class VideoFrame:
    jpeg: bytes
    index: int
    captured_at: datetime


@dataclass(frozen=True)
class VideoBudget:
    """What a video may still add to the archive: frames (its entry limit) and bytes (its
    expanded size limit), both shared with the archive's other entries."""

    frames: int
    bytes: int
    max_pixels: int


def video_frames(data: bytes, *, budget: VideoBudget, fps: float | None = None) -> list[VideoFrame]:
    """The frames of the video's first video stream, in presentation order, as JPEG: every
    one, or with ``fps`` the first of each ``1 / fps`` s from the first frame (a recorder's 25
    or 30 fps taken at the camera's own rate, which is what a fit's motion units should be)."""
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError) as exc:
        raise ValueError(f"not a readable video ({exc})") from exc
    with container:
        if not container.streams.video:
            raise ValueError("holds no video stream")
        frames = _decoded(container, budget=budget, fps=fps)
    if not frames:
        raise ValueError("holds no decodable frame")
    return frames


def _decoded(
    container: InputContainer, *, budget: VideoBudget, fps: float | None
) -> list[VideoFrame]:
    stream = container.streams.video[0]
    # The stream's declared size, before a frame of it is decoded (each frame is checked too:
    # a stream may declare none, or change size).
    _check_pixels(stream.width or 0, stream.height or 0, budget.max_pixels)
    start = _creation_time(container)
    frames: list[VideoFrame] = []
    first: float | None = None
    last_slot = -1
    stored = 0
    try:
        for index, frame in enumerate(container.decode(stream)):
            if frame.time is None:
                raise ValueError(f"frame {index} has no timestamp")
            first = frame.time if first is None else first
            if fps is not None:
                slot = math.floor((frame.time - first) * fps + SLOT_TOLERANCE)
                if slot <= last_slot:
                    continue
                last_slot = slot
            _check_pixels(frame.width, frame.height, budget.max_pixels)
            if len(frames) >= budget.frames:
                raise ValueError(
                    f"more frames than the archive may still hold ({budget.frames}); cut the "
                    "video, or keep fewer frames a second (video_fps)"
                )
            jpeg = io.BytesIO()
            image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
            image.save(jpeg, format="JPEG", quality=JPEG_QUALITY)
            stored += jpeg.tell()
            if stored > budget.bytes:
                raise ValueError(f"its frames expand past the archive's limit ({budget.bytes} B)")
            at = start + timedelta(seconds=frame.time - first)
            frames.append(VideoFrame(jpeg.getvalue(), index, at))
    except av.FFmpegError as exc:
        why = f"a corrupt video: decoding failed after {len(frames)} frames ({exc})"
        raise ValueError(why) from exc
    return frames


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ValueError(f"{width}x{height} frames are larger than {max_pixels} pixels")


def _creation_time(container: InputContainer) -> datetime:
    tag = container.metadata.get("creation_time")
    if not tag:
        return UNDATED
    try:
        found = datetime.fromisoformat(tag.replace("Z", "+00:00"))
    except ValueError:
        return UNDATED
    return found if found.tzinfo else found.replace(tzinfo=UTC)
