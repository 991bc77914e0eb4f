"""What every source yields (timed frames), how frames are sampled, and how sources are named.

A source is a stream URL (``rtsp://``, ``http://``...), a video file, a directory of images, or
``push://?token_sha256=<hex>`` for a camera that uploads its snapshots to ingest. Each but the
last opens into an iterator of ``SourceFrame`` whose offsets are seconds of source time, so one
sampler and one pacing rule serve them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from PIL import Image

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class SourceError(RuntimeError):
    """The camera, file or directory could not be opened or read; the message names it."""


class SourceKind(StrEnum):
    STREAM = "stream"  # live: it does not wait for us, and it may drop and come back
    FILE = "file"
    DIRECTORY = "directory"
    PUSH = "push"  # the camera uploads snapshots to ingest's push endpoint


@dataclass(frozen=True)
class SourceFrame:
    image: Image.Image
    offset_s: float  # seconds since the start of the source, increasing across loops


def kind_of(source: str) -> SourceKind:
    if source.startswith("push://"):
        return SourceKind.PUSH
    if "://" in source:
        return SourceKind.STREAM
    return SourceKind.DIRECTORY if Path(source).is_dir() else SourceKind.FILE


def check_exists(source: str) -> None:
    """Refuse a file or directory that is not there: a typo, not a camera that may come back."""
    if kind_of(source) in {SourceKind.STREAM, SourceKind.PUSH} or Path(source).exists():
        return
    what = "video file" if Path(source).suffix else "video file or image directory"
    raise SourceError(f"{what} {source!r} does not exist")


def push_token_sha256(source: str) -> str:
    """The sha256 (hex) of the token a push camera must present; only the hash is configured,
    so neither the camera definition nor ingest's logs ever hold the token itself."""
    values = parse_qs(urlsplit(source).query).get("token_sha256", [])
    if len(values) != 1 or not _SHA256_HEX.fullmatch(values[0]):
        raise SourceError(
            "a push source is push://?token_sha256=<64 lowercase hex digits>: the sha256 of the "
            'camera\'s token (printf %s "$TOKEN" | sha256sum)'
        )
    return values[0]


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
