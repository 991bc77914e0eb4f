"""What every source yields (timed frames), how frames are sampled, and how sources are named.

A source is a stream URL (``rtsp://``, ``http://``...), a video file or a directory of images.
Each opens into an iterator of ``SourceFrame`` whose offsets are seconds of source time, so one
sampler and one pacing rule serve them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from PIL import Image


class SourceError(RuntimeError):
    """The camera, file or directory could not be opened or read; the message names it."""


class SourceKind(StrEnum):
    STREAM = "stream"  # live: it does not wait for us, and it may drop and come back
    FILE = "file"
    DIRECTORY = "directory"


@dataclass(frozen=True)
class SourceFrame:
    image: Image.Image
    offset_s: float  # seconds since the start of the source, increasing across loops


def kind_of(source: str) -> SourceKind:
    if "://" in source:
        return SourceKind.STREAM
    return SourceKind.DIRECTORY if Path(source).is_dir() else SourceKind.FILE


def check_exists(source: str) -> None:
    """Refuse a file or directory that is not there: a typo, not a camera that may come back."""
    if kind_of(source) is SourceKind.STREAM or Path(source).exists():
        return
    what = "video file" if Path(source).suffix else "video file or image directory"
    raise SourceError(f"{what} {source!r} does not exist")


def redact(source: str) -> str:
    """The source as logs and camera status show it: a password in the URL becomes ``***``."""
    parts = urlsplit(source)
    if parts.password is None:
        return source
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class Sampler:
    """Keeps frames on a ``1/fps`` grid of source time, so a 30 fps source sampled to 7 fps
    yields 7 frames a second on average; after a gap the grid restarts at the next frame."""

    def __init__(self, fps: float) -> None:
        self._period = 1.0 / fps
        self._next_due = 0.0

    def keep(self, offset_s: float) -> bool:
        if offset_s + 1e-6 < self._next_due:
            return False
        following = self._next_due + self._period
        self._next_due = following if following > offset_s else offset_s + self._period
        return True
