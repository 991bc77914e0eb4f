"""push:// sources: the API stores only the token's sha256, and ingest reads it back."""

from __future__ import annotations

import hashlib

import pytest

from vigil_api.domain.camera_sources import check_source
from vigil_ingest.sources import SourceError, kind_of, push_token_sha256
from vigil_shared.cameras.sources import SourceKind, redact

DIGEST = hashlib.sha256(b"token").hexdigest()
PUSH = f"push://?token_sha256={DIGEST}"


def test_a_push_source_is_accepted_shown_as_is_and_read_back_by_ingest() -> None:
    assert check_source(PUSH) == PUSH
    assert redact(PUSH) == PUSH  # a hash, not a secret
    assert kind_of(PUSH) is SourceKind.PUSH
    assert push_token_sha256(PUSH) == DIGEST


@pytest.mark.parametrize(
    "source",
    [
        "push://",
        "push://?token=plaintext-token",
        f"push://?token_sha256={DIGEST.upper()}",
        f"push://?token_sha256={DIGEST[:-1]}",
        f"push://cam?token_sha256={DIGEST}",
        f"push://?token_sha256={DIGEST}&token_sha256={DIGEST}",
    ],
)
def test_anything_but_the_sha256_of_a_token_is_refused_by_both(source: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        check_source(source)
    if "cam?" not in source:  # ingest ignores a host; the API refuses it
        with pytest.raises(SourceError, match="sha256"):
            push_token_sha256(source)
