"""API keys and who holds them: roles, camera scope, key generation and hashing.

A key is ``vgl_`` followed by 43 URL-safe characters (256 random bits). Only its sha256 is
stored: with that much entropy a slow password hash adds nothing, and a plain digest lets a
request find its key with one indexed lookup. The first 12 characters (the prefix) are stored
too, so an operator can tell keys apart in listings and logs without the secret.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum

KEY_MARK = "vgl_"
PREFIX_LENGTH = 12
_KEY_PATTERN = re.compile(r"^vgl_[A-Za-z0-9_-]{43}$")


class Role(StrEnum):
    """What a key may do; each role includes the ones before it."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank


def new_key() -> str:
    return KEY_MARK + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def loggable_prefix(presented: str) -> str | None:
    """The prefix of a well-formed key, safe to log; None for anything else (never log that)."""
    return presented[:PREFIX_LENGTH] if _KEY_PATTERN.fullmatch(presented) else None


@dataclass(frozen=True)
class Principal:
    """The key a request was made with."""

    key_id: uuid.UUID | None  # None for the admin key from the environment
    prefix: str
    name: str  # the key's name, recorded as who reviewed or changed something
    role: Role
    camera_ids: frozenset[str] | None  # None: every camera

    @property
    def scoped(self) -> bool:
        return self.camera_ids is not None

    def can_see(self, camera_id: str) -> bool:
        return self.camera_ids is None or camera_id in self.camera_ids


BOOTSTRAP_ADMIN = Principal(
    key_id=None, prefix="env-admin", name="env-admin", role=Role.ADMIN, camera_ids=None
)
BOOTSTRAP_INGEST = Principal(
    key_id=None, prefix="env-ingest", name="env-ingest", role=Role.OPERATOR, camera_ids=None
)
