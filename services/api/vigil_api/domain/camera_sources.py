"""Where a camera may be read from, checked before it is stored, and how it is shown.

A source is a stream URL (``rtsp``, ``rtsps``, ``rtmp``, ``rtmps``, ``http``, ``https``: what
ingest opens with FFmpeg) or an absolute path to a video file or image folder. Paths are
accepted only under ``VIGIL_API_CAMERA_FILE_ROOT``, so a key that may register cameras cannot
point ingest at any file of its host. Every other scheme (``file:``, ``ftp:``, ``javascript:``,
``data:``...) is refused, but ``push://?token_sha256=<hex>``: a camera that uploads snapshots to
ingest's push endpoint with a token whose sha256 this is (only the hash is stored). Passwords
in a URL are stored (ingest needs them) but never shown, except to ingest
(``ingest_cameras.py``).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated
from urllib.parse import SplitResult, urlsplit, urlunsplit

from pydantic import AfterValidator, StringConstraints

PUSH_SOURCE = re.compile(r"^push://\?token_sha256=[0-9a-f]{64}$")

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
    if scheme.lower() == "push":
        if not PUSH_SOURCE.fullmatch(value):
            raise ValueError(
                "a push source is push://?token_sha256=<64 lowercase hex digits>, the sha256 "
                "of the camera's upload token"
            )
        return value
    if not colon or scheme.lower() not in STREAM_SCHEMES:
        allowed = ", ".join(STREAM_SCHEMES)
        raise ValueError(
            f"scheme {scheme!r} is not allowed; use {allowed}, push:// or an absolute path"
        )
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
