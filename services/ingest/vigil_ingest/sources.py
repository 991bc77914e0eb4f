"""What every source yields (timed frames), how frames are sampled, and how a source is read.

The grammar of a source is the camera contract's (``vigil_shared.cameras.sources``); ingest
parses it with ``read_source`` and opens it by its kind (``capture.OPENERS``; push cameras:
``push.py``). Every kind but push opens into an iterator of ``SourceFrame`` whose offsets are
seconds of source time, so one sampler and one pacing rule serve them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from vigil_shared.cameras.sources import CameraSource, SourceKind, parse_source


class SourceError(RuntimeError):
    """The camera, file or directory could not be opened or read; the message names it."""


@dataclass(frozen=True)
class SourceFrame:
    image: Image.Image
    offset_s: float  # seconds since the start of the source, increasing across loops


def read_source(source: str) -> CameraSource:
    """The source parsed for opening; ``SourceError`` when it cannot be one.

    A URL follows the contract's grammar. A path is taken as this host has it: a setting may name
    a relative one (the API stores only absolute ones), and a folder there is a ``DIRECTORY``.
    """
    if "://" in source and not source.startswith("/"):
        try:
            return parse_source(source)
        except ValueError as exc:
            raise SourceError(f"the camera source is not usable: {exc}") from exc
    kind = SourceKind.DIRECTORY if Path(source).is_dir() else SourceKind.FILE
    return CameraSource(source, kind)


def kind_of(source: str) -> SourceKind:
    return read_source(source).kind


def check_exists(source: str) -> None:
    """Refuse a file or directory that is not there: a typo, not a camera that may come back."""
    if kind_of(source).live or Path(source).exists():
        return
    what = "video file" if Path(source).suffix else "video file or image directory"
    raise SourceError(f"{what} {source!r} does not exist")


def push_token_sha256(source: str) -> str:
    """The sha256 (hex) of the token a push camera must present; only the hash is configured,
    so neither the camera definition nor ingest's logs ever hold the token itself."""
    token_sha256 = read_source(source).token_sha256
    if token_sha256 is None:
        raise SourceError("not a push source: push://?token_sha256=<64 lowercase hex digits>")
    return token_sha256


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
