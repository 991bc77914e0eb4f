"""API key management for admins: create (the key is shown once), list, revoke.

A key can be marked ``service``: a service (ingest) runs with it, so revoking it stops that
service, which then fails quietly in the background (cameras registered afterwards never start).
Revoking a service key therefore answers 409 unless ``force=true``. Every key shows when it was
last used (to the minute), so an admin sees which keys are in use before revoking one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil_api.core import problems
from vigil_api.core.auth import AdminDep
from vigil_api.core.deps import SessionDep
from vigil_api.core.security import PREFIX_LENGTH, Principal, Role, hash_key, new_key
from vigil_shared.db.models import ApiKey
from vigil_shared.schemas.frames import CameraId
from vigil_shared.schemas.inputs import SafeName

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


KEY_EXAMPLE: dict[str, JsonValue] = {
    "id": "0b7e3c52-5d1e-4c8e-9a57-2f7c1f0d9e44",
    "name": "night-shift console",
    "prefix": "vgl_Q2xk9f3a",
    "role": "viewer",
    "camera_ids": ["lobby-north", "loading-dock"],
    "created_by": "env-admin",
    "created_at": "2026-11-28T09:00:00+00:00",
    "expires_at": None,
    "revoked_at": None,
    "service": False,
    "last_used_at": "2026-11-28T09:42:00+00:00",
}


class KeyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "night-shift console", "role": "viewer", "camera_ids": ["lobby-north"]}
            ]
        },
    )

    name: SafeName = Field(examples=["night-shift console"])
    role: Role = Field(examples=["viewer"])
    camera_ids: Annotated[list[CameraId], Field(min_length=1, max_length=1000)] | None = Field(
        default=None,
        description="The only cameras the key sees; omit for every camera.",
        examples=[["lobby", "loading-dock"]],
    )
    expires_at: AwareDatetime | None = None
    service: bool = Field(
        default=False,
        description="A key a service runs with (ingest): revoking it then needs force=true.",
    )

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value

    @model_validator(mode="after")
    def _admins_are_not_scoped(self) -> KeyIn:
        if self.role is Role.ADMIN and self.camera_ids is not None:
            raise ValueError("an admin key cannot be camera-scoped: admins can create any key")
        return self


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [KEY_EXAMPLE]})

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    role: Role
    camera_ids: list[str] | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    service: bool = Field(description="A service runs with it; revoking it needs force=true.")
    last_used_at: datetime | None = Field(
        description="When a request last used it (to the minute); null: never."
    )


class KeyCreated(KeyOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**KEY_EXAMPLE, "key": "vgl_Q2xk9f3a" + "x" * 35}]}
    )

    key: str = Field(description="The key itself. It is shown only in this response: keep it.")


def create_key(*, session: Session, spec: KeyIn, created_by: Principal) -> tuple[ApiKey, str]:
    """Store a new key's hash; returns the row and the plaintext key (never stored)."""
    key = new_key()
    row = ApiKey(
        name=spec.name,
        prefix=key[:PREFIX_LENGTH],
        key_sha256=hash_key(key),
        role=spec.role,
        camera_ids=None if spec.camera_ids is None else sorted(set(spec.camera_ids)),
        created_by=created_by.prefix,
        expires_at=spec.expires_at,
        service=spec.service,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row, key


def list_keys(*, session: Session, include_revoked: bool) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(query))


class ServiceKeyError(Exception):
    """A service key's revocation without ``force``; the message says what to do first."""


def revoke_key(*, session: Session, key_id: uuid.UUID, force: bool = False) -> ApiKey | None:
    """Mark the key revoked (kept for the audit trail); revoking twice changes nothing. A service
    key is revoked only with ``force`` (``ServiceKeyError`` otherwise)."""
    row = session.get(ApiKey, key_id)
    if row is not None and row.revoked_at is None and row.service and not force:
        used = "never used" if row.last_used_at is None else f"last used {row.last_used_at:%c} UTC"
        raise ServiceKeyError(
            f"key {row.prefix} ({row.name}, {used}) is a service key: the service that runs "
            "with it stops working when it is revoked. Give the service a new key first, then "
            "revoke this one with force=true"
        )
    if row is not None and row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.commit()
    return row


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
def post_key(spec: KeyIn, session: SessionDep, admin: AdminDep, response: Response) -> KeyCreated:
    row, key = create_key(session=session, spec=spec, created_by=admin)
    response.headers["Cache-Control"] = "no-store"
    return KeyCreated(**KeyOut.model_validate(row).model_dump(), key=key)


@router.get("", response_model=list[KeyOut])
def get_keys(session: SessionDep, _: AdminDep, include_revoked: bool = False) -> list[ApiKey]:
    return list_keys(session=session, include_revoked=include_revoked)


@router.delete("/{key_id}", response_model=KeyOut, responses=problems.responses(404, 409))
def delete_key(
    key_id: uuid.UUID,
    session: SessionDep,
    _: AdminDep,
    force: Annotated[
        bool, Query(description="Revoke a service key too (it stops the service using it).")
    ] = False,
) -> ApiKey:
    """Revoke the key at once; a service key only with ``force=true`` (409 otherwise)."""
    try:
        row = revoke_key(session=session, key_id=key_id, force=force)
    except ServiceKeyError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"key {key_id} does not exist")
    return row
