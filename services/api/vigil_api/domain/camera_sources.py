"""Where a camera may be read from, checked before it is stored.

The grammar (stream URLs, ``push://?token_sha256=<hex>``, absolute paths) and the redaction of
passwords are the camera contract's (``vigil_shared.cameras.sources``), shared with ingest. What
is the API's own: paths are accepted only under ``VIGIL_API_CAMERA_FILE_ROOT``, so a key that
may register cameras cannot point ingest at any file of its host. Passwords in a URL are stored
(ingest needs them) but never shown, except to ingest (``ingest_cameras.py``).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from vigil_shared.cameras.sources import parse_source
from vigil_shared.schemas.inputs import NAME_FORBIDDEN


def check_source(value: str) -> str:
    """The source's grammar (a pydantic validator: raises ``ValueError`` with the reason)."""
    parse_source(value)
    return value


def file_outside_root(source: str, root: str | None) -> str | None:
    """Why a file source is refused under ``root``; None when it is allowed (or not a file)."""
    if not source.startswith("/"):
        return None
    if root is None:
        return "file sources are disabled; set VIGIL_API_CAMERA_FILE_ROOT to allow a folder"
    if not PurePosixPath(source).is_relative_to(root):
        return f"a file source must be under {root}"
    return None


SourceUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048),
    AfterValidator(check_source),
    # What the OpenAPI document says of it: ``check_source`` checks this, and more, in words.
    Field(json_schema_extra={"pattern": rf"^[^\s{NAME_FORBIDDEN}]+$"}),
]
