"""Anomaly events stored by the sink: filtered queries with keyset cursors, one event, its
snapshot.

A camera-scoped key sees only its cameras' events: asking for another camera by name is a 403
(the key knows which cameras it was given), and another camera's event id is a 404, exactly as
an event that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, create_model
from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from vigil_api.core import problems
from vigil_api.core.auth import ViewerDep, forbidden
from vigil_api.core.deps import Clients, ClientsDep, SessionDep
from vigil_api.core.problems import invalid_field
from vigil_api.core.security import Principal
from vigil_api.domain.event_snapshots import Presigner
from vigil_shared.db.event_rows import EVENT_COLUMNS
from vigil_shared.db.models import Event
from vigil_shared.schemas.frames import CameraId
from vigil_shared.schemas.inputs import ONE_LINE, ONE_LINE_SCHEMA, SafeName

router = APIRouter(prefix="/api/v1/events", tags=["events"])

MAX_PAGE = 500
SNAPSHOT_URL_EXPIRY = timedelta(minutes=5)
# Names (``vigil_shared.schemas.inputs``): labels are short, model ids at most 128 characters.
Text = Annotated[str, StringConstraints(min_length=1, max_length=64), ONE_LINE, ONE_LINE_SCHEMA]
ModelIdText = SafeName
CURSOR_PATTERN = r"^[A-Za-z0-9_=-]+$"  # what ``Cursor.encode`` writes: URL-safe base64

EXAMPLE_EVENT_ID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
EXAMPLE_EVENT: dict[str, Any] = {
    "event_id": EXAMPLE_EVENT_ID,
    "camera_id": "lobby-north",
    "status": "ended",
    "started_at": "2026-11-28T09:14:02.100000+00:00",
    "ended_at": "2026-11-28T09:14:09.700000+00:00",
    "updated_at": "2026-11-28T09:14:10.020000+00:00",
    "label": None,
    "frame_seq": 48213,
    "captured_at": "2026-11-28T09:14:05.300000+00:00",
    "detected_at": "2026-11-28T09:14:05.390000+00:00",
    "score": 3.81,
    "threshold": 2.2,
    "model_id": "oneclass-lobby-7f3a",
    "model_kind": "registry",
    "snapshot_url": "https://s3.example/vigil-snapshots/events/lobby-north/"
    f"{EXAMPLE_EVENT_ID}/overlay.jpg?X-Amz-Expires=300&X-Amz-Signature=...",
    "review": {
        "verdict": "confirmed",
        "label": "bicycle",
        "note": "cyclist on the walkway",
        "reviewed_by": "night-shift console",
        "reviewed_at": "2026-11-28T09:20:00+00:00",
    },
}


class EventStatus(StrEnum):
    OPEN = "open"
    ENDED = "ended"


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"


class ReviewState(StrEnum):
    UNREVIEWED = "unreviewed"
    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"


class Order(StrEnum):
    NEWEST_FIRST = "desc"
    OLDEST_FIRST = "asc"


class EventFilters(BaseModel):
    """What to select; the list and the live stream take the same filters."""

    model_config = ConfigDict(protected_namespaces=())

    camera_id: list[CameraId] = Field(
        default_factory=list,
        max_length=200,
        description="Only these cameras (repeat the parameter); none: every camera the key sees.",
        examples=[["lobby-north", "loading-dock"]],
    )
    started_from: AwareDatetime | None = Field(
        default=None,
        description="Events that started at or after this time.",
        examples=["2026-11-28T00:00:00Z"],
    )
    started_to: AwareDatetime | None = Field(
        default=None,
        description="Events that started before this time.",
        examples=["2026-11-29T00:00:00Z"],
    )
    min_score: float | None = Field(default=None, ge=0, description="Peak score at least this.")
    max_score: float | None = Field(default=None, ge=0, description="Peak score at most this.")
    label: Text | None = Field(default=None, description="Predicted class (classify models).")
    status: EventStatus | None = None
    review: ReviewState | None = None
    model_id: ModelIdText | None = None


class EventQuery(EventFilters):
    """Filters plus one page of a keyset cursor over (started_at, event_id)."""

    cursor: str | None = Field(
        default=None,
        max_length=256,
        pattern=CURSOR_PATTERN,
        description="``next_cursor`` of the previous page, with the same filters and order.",
    )
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    order: Order = Field(default=Order.NEWEST_FIRST, description="By start time.")


class ReviewOut(BaseModel):
    verdict: Verdict
    label: str | None
    note: str | None
    reviewed_by: str = Field(description="The name of the key that reviewed it.")
    reviewed_at: datetime


SHOWN_AS = {"snapshot_key": "snapshot_url"}
"""Stored columns the API shows as something else: the snapshot's key as a short-lived link."""
OUT_COLUMNS = [column for column in EVENT_COLUMNS if column not in SHOWN_AS]


def _output_fields() -> dict[str, Any]:
    """The stored columns as required output fields, typed as in the event schema."""
    return {column: (EVENT_COLUMNS[column].info.annotation, ...) for column in OUT_COLUMNS}


# The stored event's fields come from the event schema (renamed as the sink stores them), so a
# new field of the event reaches the API without an edit here.
EventOut = create_model(
    "EventOut",
    __config__=ConfigDict(protected_namespaces=(), json_schema_extra={"examples": [EXAMPLE_EVENT]}),
    __doc__="An event from start to end; ``frame_seq``/``captured_at``/``score`` are its peak "
    "frame.",
    **_output_fields(),
    status=(EventStatus, ...),
    updated_at=(datetime, ...),
    snapshot_url=(
        str | None,
        Field(
            description="A short-lived (5 min) link to the peak frame with its heatmap; "
            "GET .../snapshot for a fresh one."
        ),
    ),
    review=(ReviewOut | None, ...),
)

EventPage = create_model(
    "EventPage",
    __config__=ConfigDict(
        json_schema_extra={"examples": [{"items": [EXAMPLE_EVENT], "next_cursor": "ZHwyMDI2"}]}
    ),
    items=(list[EventOut], ...),
    next_cursor=(
        str | None,
        Field(description="Pass as ``cursor`` for the next page; null: end."),
    ),
)


@dataclass(frozen=True)
class Snapshots:
    """Links to event snapshots, signed with one request time (see ``event_snapshots``)."""

    presigner: Presigner

    def url(self, key: str | None) -> str | None:
        return None if key is None else self.presigner.url(key)


def snapshots_of(clients: Clients) -> Snapshots:
    s3 = clients.settings.common.s3
    now = datetime.now(UTC)
    return Snapshots(Presigner.for_snapshots(s3, now=now, expires=SNAPSHOT_URL_EXPIRY))


def event_out(row: Event, snapshots: Snapshots) -> BaseModel:
    review = None
    if row.review is not None and row.reviewed_at is not None:
        review = ReviewOut(
            verdict=Verdict(row.review),
            label=row.review_label,
            note=row.review_note,
            reviewed_by=row.reviewed_by or "",
            reviewed_at=row.reviewed_at,
        )
    return EventOut.model_validate(
        {column: getattr(row, column) for column in OUT_COLUMNS}
        | {
            "status": EventStatus(row.status),
            "updated_at": row.updated_at,
            "snapshot_url": snapshots.url(row.snapshot_key),
            "review": review,
        }
    )


# --- cursor -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """A position in (timestamp, event_id) order; opaque to clients."""

    at: datetime
    event_id: uuid.UUID

    def encode(self, tag: str) -> str:
        raw = f"{tag}|{self.at.isoformat()}|{self.event_id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, tag: str) -> Cursor:
        """Raises ``ValueError`` with what to do for anything this API did not hand out."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            got_tag, when, event_id = raw.split("|")
            at = datetime.fromisoformat(when)
            if got_tag != tag or at.tzinfo is None:
                raise ValueError(got_tag)
            return cls(at=at, event_id=uuid.UUID(event_id))
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(
                "not a cursor this API returned for this order; start again without it"
            ) from exc


# --- queries ------------------------------------------------------------------------------


def apply_filters(
    query: Select[Event], *, filters: EventFilters, scope: frozenset[str] | None
) -> Select[Event]:
    """Narrow ``query`` to the filters and to the key's camera scope."""
    cameras = set(filters.camera_id)
    if scope is not None:
        cameras = cameras & scope if cameras else set(scope)
        if not cameras:
            return query.where(Event.camera_id.is_(None))  # nothing: no camera in scope
    if len(cameras) == 1:
        query = query.where(Event.camera_id == next(iter(cameras)))
    elif cameras:
        query = query.where(Event.camera_id.in_(sorted(cameras)))
    if filters.started_from is not None:
        query = query.where(Event.started_at >= filters.started_from)
    if filters.started_to is not None:
        query = query.where(Event.started_at < filters.started_to)
    if filters.min_score is not None:
        query = query.where(Event.score >= filters.min_score)
    if filters.max_score is not None:
        query = query.where(Event.score <= filters.max_score)
    if filters.label is not None:
        query = query.where(Event.label == filters.label)
    if filters.status is not None:
        query = query.where(Event.status == str(filters.status))
    if filters.model_id is not None:
        query = query.where(Event.model_id == filters.model_id)
    if filters.review is ReviewState.UNREVIEWED:
        query = query.where(Event.review.is_(None))
    elif filters.review is not None:
        query = query.where(Event.review == str(filters.review))
    return query


def query_events(
    *, session: Session, query: EventQuery, scope: frozenset[str] | None
) -> tuple[list[Event], Cursor | None]:
    """One page in start-time order and the cursor of the next (None: last page)."""
    key = tuple_(Event.started_at, Event.event_id)
    statement = apply_filters(select(Event), filters=query, scope=scope)
    if query.order is Order.NEWEST_FIRST:
        statement = statement.order_by(Event.started_at.desc(), Event.event_id.desc())
    else:
        statement = statement.order_by(Event.started_at, Event.event_id)
    if query.cursor is not None:
        after = Cursor.decode(query.cursor, query.order.value)
        position = tuple_(after.at, after.event_id)
        statement = statement.where(
            key < position if query.order is Order.NEWEST_FIRST else key > position
        )
    rows = list(session.scalars(statement.limit(query.limit + 1)))
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return page, Cursor(page[-1].started_at, page[-1].event_id) if more else None


def visible_event(*, session: Session, principal: Principal, event_id: uuid.UUID) -> Event | None:
    """The event, or None when it does not exist or its camera is outside the key's scope."""
    row = session.get(Event, event_id)
    return row if row is not None and principal.can_see(row.camera_id) else None


def event_not_found(event_id: uuid.UUID) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"event {event_id} does not exist")


def check_camera_scope(request: Request, principal: Principal, camera_ids: list[str]) -> None:
    outside = sorted(c for c in camera_ids if not principal.can_see(c))
    if outside:
        detail = f"camera {', '.join(outside)} is outside this key's camera scope"
        raise forbidden(request, principal, "scope", detail)


# --- routes -------------------------------------------------------------------------------


@router.get("", response_model=EventPage, responses=problems.responses(403, 422))
def list_events(
    request: Request,
    session: SessionDep,
    clients: ClientsDep,
    principal: ViewerDep,
    query: Annotated[EventQuery, Query()],
) -> BaseModel:
    """Events by start time (newest first unless ``order=asc``), filtered, a page at a time."""
    check_camera_scope(request, principal, query.camera_id)
    try:
        rows, next_at = query_events(session=session, query=query, scope=principal.camera_ids)
    except ValueError as exc:
        raise invalid_field(("query", "cursor"), str(exc)) from exc
    snapshots = snapshots_of(clients)
    return EventPage(
        items=[event_out(r, snapshots) for r in rows],
        next_cursor=next_at.encode(query.order.value) if next_at else None,
    )


@router.get("/{event_id}", response_model=EventOut, responses=problems.responses(404, 422))
def get_event(
    event_id: uuid.UUID, session: SessionDep, clients: ClientsDep, principal: ViewerDep
) -> BaseModel:
    row = visible_event(session=session, principal=principal, event_id=event_id)
    if row is None:
        raise event_not_found(event_id)
    return event_out(row, snapshots_of(clients))


@router.get(
    "/{event_id}/snapshot",
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    response_class=RedirectResponse,
    responses={
        307: {
            "description": "Redirect to a short-lived link to the snapshot (JPEG).",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        **problems.responses(404, 422),
    },
)
def get_snapshot(
    event_id: uuid.UUID, session: SessionDep, clients: ClientsDep, principal: ViewerDep
) -> RedirectResponse:
    """The peak frame with its heatmap overlaid, as a redirect to object storage."""
    row = visible_event(session=session, principal=principal, event_id=event_id)
    if row is None:
        raise event_not_found(event_id)
    url = snapshots_of(clients).url(row.snapshot_key)
    if url is None:
        detail = f"event {event_id} has no snapshot (inference stored none for it)"
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail)
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
