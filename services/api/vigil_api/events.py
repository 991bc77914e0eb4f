"""Anomaly events stored by the sink, queried by camera and time with cursor pagination."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from vigil_api.auth import ViewerDep, forbidden
from vigil_api.deps import SessionDep
from vigil_shared.db.models import Event

router = APIRouter(prefix="/api/v1/events", tags=["events"])


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, protected_namespaces=())

    event_id: uuid.UUID
    camera_id: str
    frame_seq: int
    captured_at: datetime
    detected_at: datetime
    score: float
    threshold: float
    model_id: str
    model_kind: str


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


def encode_cursor(event: Event) -> str:
    raw = f"{event.captured_at.isoformat()}|{event.event_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        when, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(when), uuid.UUID(event_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("cursor is not one this API returned; start again without it") from exc


def query_events(
    *,
    session: Session,
    camera_id: str | None,
    scope: frozenset[str] | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
) -> EventPage:
    query = select(Event).order_by(Event.captured_at, Event.event_id).limit(limit + 1)
    if camera_id is not None:
        query = query.where(Event.camera_id == camera_id)
    if scope is not None:
        query = query.where(Event.camera_id.in_(sorted(scope)))
    if since is not None:
        query = query.where(Event.captured_at >= since)
    if until is not None:
        query = query.where(Event.captured_at < until)
    if cursor is not None:
        query = query.where(tuple_(Event.captured_at, Event.event_id) > decode_cursor(cursor))
    rows = list(session.scalars(query))
    page, more = rows[:limit], len(rows) > limit
    return EventPage(
        items=[EventOut.model_validate(r) for r in page],
        next_cursor=encode_cursor(page[-1]) if more else None,
    )


@router.get("", response_model=EventPage)
def list_events(
    request: Request,
    session: SessionDep,
    principal: ViewerDep,
    camera_id: str | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    """Events in capture order; a camera-scoped key gets only its cameras' events."""
    if camera_id is not None and not principal.can_see(camera_id):
        detail = f"camera {camera_id} is outside this key's camera scope"
        raise forbidden(request, principal, "scope", detail)
    try:
        return query_events(
            session=session,
            camera_id=camera_id,
            scope=principal.camera_ids,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
