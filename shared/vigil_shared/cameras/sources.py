"""Where a camera may be read from: the source grammar, parsed the same by the API and ingest.

A source is a stream URL (``rtsp``, ``rtsps``, ``rtmp``, ``rtmps``, ``http``, ``https``: what
ingest opens with FFmpeg), an absolute path to a video file or an image folder on ingest's host,
or ``push://?token_sha256=<hex>``: a camera that uploads snapshots to ingest's push endpoint with
a token whose sha256 this is (only the hash is stored). Every other scheme (``file:``, ``ftp:``,
``javascript:``, ``data:``...) is refused. Passwords in a URL are stored (ingest needs them) but
shown as ``***`` (``redact``).

The API validates a source with ``parse_source`` before it stores it; ingest parses it again to
pick the opener of its kind. A new source type is one entry in ``PARSERS`` here (with a new
``SourceKind`` when it is opened differently) and one opener in ingest.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from urllib.parse import SplitResult, urlsplit, urlunsplit

REDACTED = "***"
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https")
_PUSH = re.compile(r"^push://\?token_sha256=(?P<digest>[0-9a-f]{64})$")


class SourceKind(StrEnum):
    STREAM = "stream"  # a URL FFmpeg opens
    FILE = "file"  # a path; the grammar cannot tell a folder, ingest can (see ``DIRECTORY``)
    DIRECTORY = "directory"  # a path that is a folder of images where ingest reads it
    PUSH = "push"  # the camera uploads snapshots to ingest's push endpoint

    @property
    def live(self) -> bool:
        """Whether the source runs on its own clock: it does not wait for its reader, and it
        may drop and come back (so it is never refused for being absent)."""
        return self in {SourceKind.STREAM, SourceKind.PUSH}


@dataclass(frozen=True)
class CameraSource:
    """A parsed source: the text as stored, its kind, and what that kind needs to be opened."""

    text: str
    kind: SourceKind
    token_sha256: str | None = None  # a push source's: the sha256 (hex) of the camera's token

    @property
    def shown(self) -> str:
        return redact(self.text)


Parser = Callable[[str], CameraSource]
"""Parses a source of its scheme; raises ``ValueError`` with what to fix."""


def _split(text: str) -> SplitResult:
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises for a port that is not a number in 0-65535
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    return parts


def parse_stream(text: str) -> CameraSource:
    parts = _split(text)
    if not parts.hostname:
        raise ValueError("the URL has no host")
    if parts.password == REDACTED:
        raise ValueError(f"the password is the redacted '{REDACTED}'; send the real one")
    return CameraSource(text, SourceKind.STREAM)


def parse_push(text: str) -> CameraSource:
    match = _PUSH.fullmatch(text)
    if match is None:
        raise ValueError(
            "a push source is push://?token_sha256=<64 lowercase hex digits>: the sha256 of the "
            'camera\'s upload token (printf %s "$TOKEN" | sha256sum)'
        )
    return CameraSource(text, SourceKind.PUSH, token_sha256=match["digest"])


def parse_path(text: str) -> CameraSource:
    if ".." in PurePosixPath(text).parts:
        raise ValueError("a file path must not contain '..'")
    return CameraSource(text, SourceKind.FILE)


PARSERS: Mapping[str, Parser] = {
    **dict.fromkeys(STREAM_SCHEMES, parse_stream),
    "push": parse_push,
}
"""The grammar: a parser per URL scheme; an absolute path (no scheme) is ``parse_path``'s."""
SOURCE_DOC = (
    "rtsp(s)://, rtmp(s)://, http(s):// URL, push://?token_sha256=<hex> for a camera that uploads "
    "snapshots, or an absolute path under the file root."
)
"""The grammar in a sentence, for API documentation."""


def parse_source(text: str) -> CameraSource:
    """The source parsed; ``ValueError`` says why it is refused (usable as a pydantic validator)."""
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError("must not contain spaces or control characters")
    if text.startswith("/"):
        return parse_path(text)
    scheme, colon, _ = text.partition(":")
    parser = PARSERS.get(scheme.lower()) if colon else None
    if parser is None:
        allowed = ", ".join(f"{name}://" for name in PARSERS)
        raise ValueError(f"scheme {scheme!r} is not allowed; use {allowed} or an absolute path")
    return parser(text)


def hash_token(token: str) -> str:
    """The sha256 (hex) of a push camera's token: what its ``push://`` source holds."""
    return hashlib.sha256(token.encode()).hexdigest()


def redact(source: str) -> str:
    """The source as shown to clients and in logs: a URL's password replaced by ``***``."""
    if source.startswith("/"):
        return source
    parts = urlsplit(source)
    if parts.password is None:
        return source
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username}:{REDACTED}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))
