"""Where a camera may be read from, checked before it is stored, and how it is shown.

A source is a stream URL (``rtsp``, ``rtsps``, ``rtmp``, ``rtmps``, ``http``, ``https``: what
ingest opens with FFmpeg) or an absolute path to a video file or image folder. Paths are
accepted only under ``VIGIL_API_CAMERA_FILE_ROOT``, so a key that may register cameras cannot
point ingest at any file of its host. Every other scheme (``file:``, ``ftp:``, ``javascript:``,
``data:``...) is refused. Passwords in a URL are stored (ingest needs them) but never shown.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated
from urllib.parse import SplitResult, urlsplit, urlunsplit

from pydantic import AfterValidator, StringConstraints

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https")
REDACTED = "***"


def check_source(value: str) -> str:
    """Lexical checks of a source (a pydantic validator: raises ``ValueError`` with the reason)."""
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("must not contain spaces or control characters")
    if value.startswith("/"):
        if ".." in PurePosixPath(value).parts:
            raise ValueError("a file path must not contain '..'")
        return value
    scheme, colon, _ = value.partition(":")
    if not colon or scheme.lower() not in STREAM_SCHEMES:
        allowed = ", ".join(STREAM_SCHEMES)
        raise ValueError(f"scheme {scheme!r} is not allowed; use {allowed} or an absolute path")
    parts = _split(value)
    if not parts.hostname:
        raise ValueError("the URL has no host")
    if parts.password == REDACTED:
        raise ValueError(f"the password is the redacted '{REDACTED}'; send the real one")
    return value


def _split(value: str) -> SplitResult:
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises for a port that is not a number in 0-65535
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    return parts


def file_outside_root(source: str, root: str | None) -> str | None:
    """Why a file source is refused under ``root``; None when it is allowed (or not a file)."""
    if not source.startswith("/"):
        return None
    if root is None:
        return "file sources are disabled; set VIGIL_API_CAMERA_FILE_ROOT to allow a folder"
    if not PurePosixPath(source).is_relative_to(root):
        return f"a file source must be under {root}"
    return None


def redact(source: str) -> str:
    """The source as shown to clients: a URL's password replaced by ``***``."""
    if source.startswith("/"):
        return source
    parts = urlsplit(source)
    if parts.password is None:
        return source
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username}:{REDACTED}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


SourceUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048),
    AfterValidator(check_source),
]
