"""The live event stream: Server-Sent Events of every event that starts, changes or is reviewed.

The stream polls PostgreSQL by an (updated_at, event_id) cursor, which is also each message's
SSE ``id``, so a browser's ``EventSource`` resumes where it left off (``Last-Event-ID``) after a
dropped connection. ``updated_at`` is a transaction's start time, so a row is sent only once it
is ``settle_s`` old: a transaction that commits late (up to that long) is not skipped. A new
stream carries the changes stored after it opened: it starts ``settle_s`` back and skips what
the database already held when it opened (``stream_start``).

Bounded: at most ``max_streams`` per process (``VIGIL_API_MAX_EVENT_STREAMS``; one more is a
503 with ``Retry-After``), each at most ``max_duration_s`` (the client
reconnects and resumes), at most ``batch`` rows per poll; it ends on client disconnect, when
the server begins to stop, and within ``key_check_s`` (``VIGIL_API_STREAM_KEY_CHECK_S``) of its
key being revoked or expiring: the key is checked when the stream opens and again that often.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from prometheus_client import Counter, Gauge
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from vigil_api.core import problems
from vigil_api.core.auth import ViewerDep, still_valid
from vigil_api.core.deps import ClientsDep
from vigil_api.core.problems import invalid_field
from vigil_api.core.security import Principal
from vigil_api.routes.events import (
    CURSOR_PATTERN,
    EXAMPLE_EVENT,
    Cursor,
    EventFilters,
    Snapshots,
    apply_filters,
    check_camera_scope,
    event_out,
    snapshots_of,
)
from vigil_shared.db.models import Event

router = APIRouter(prefix="/api/v1/events", tags=["events"])

OPEN_STREAMS = Gauge("vigil_api_event_streams", "Live event streams open now, in this process")
REFUSED_STREAMS = Counter(
    "vigil_api_event_streams_refused", "Live event streams answered 503: every slot was taken"
)
RETRY_AFTER_S = 5
CURSOR_TAG = "u"  # stream cursors are over updated_at; list cursors cannot be mixed in
_LAST_UUID = uuid.UUID(int=(1 << 128) - 1)


@dataclass(frozen=True)
class StreamLimits:
    poll_s: float = 0.5
    heartbeat_s: float = 15.0
    settle_s: float = 1.0
    max_duration_s: float = 900.0
    batch: int = 200
    retry_ms: int = 2000
    key_check_s: float = 15.0


def get_stream_limits(clients: ClientsDep) -> StreamLimits:
    """A dependency so tests (and the fuzzer) can shorten streams."""
    return StreamLimits(key_check_s=clients.settings.stream_key_check_s)


class StreamRegistry:
    """This process's open streams: bounded in number, and told to end when the server stops.

    A stream's slot is taken (``reserve``) before its response is returned, under a lock, so a
    burst of simultaneous opens cannot overshoot the bound; the response gives it back when it
    is done being sent, however it ends (``EventStreamResponse``)."""

    def __init__(self, max_streams: int = 100) -> None:
        if max_streams < 1:
            raise ValueError(f"at least one event stream, not {max_streams}")
        self.max_streams = max_streams
        self.stopping = threading.Event()
        self._open = 0
        self._lock = threading.Lock()

    @property
    def open(self) -> int:
        return self._open

    def reserve(self) -> bool:
        """Take a slot; False (and counted as refused) when every one is taken."""
        with self._lock:
            if self._open >= self.max_streams:
                REFUSED_STREAMS.inc()
                return False
            self._open += 1
        OPEN_STREAMS.inc()
        return True

    def release(self) -> None:
        with self._lock:
            if self._open == 0:
                raise RuntimeError("an event stream slot released that was never taken")
            self._open -= 1
        OPEN_STREAMS.dec()


def get_registry(request: Request) -> StreamRegistry:
    registry: StreamRegistry = request.app.state.event_streams
    return registry


Fetch = Callable[[Cursor], list[Event]]


@dataclass(frozen=True)
class StreamStart:
    """Where a stream begins, and the changes at or after that point that were already stored
    when it opened, which it skips (none when it resumes after a ``Last-Event-ID``)."""

    cursor: Cursor
    stored: frozenset[tuple[uuid.UUID, datetime]] = frozenset()

    def already_stored(self, row: Event) -> bool:
        return (row.event_id, row.updated_at) in self.stored


def stream_start(
    *,
    sessions: sessionmaker[Session],
    filters: EventFilters,
    scope: frozenset[str] | None,
    settle_s: float,
) -> StreamStart:
    """The start of a stream opened now: it carries the changes stored from here on.

    No timestamp tells a change committed just before the stream opened from one whose
    transaction began before and commits after (``updated_at`` is when it began). So the stream
    starts ``settle_s`` back, and skips the changes of that window visible in the snapshot it
    takes as it opens: exactly those the database held already."""
    with sessions() as session:
        # One snapshot for both reads; clock_timestamp() runs after it is taken, so every
        # change it sees began before ``opened``.
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        opened = session.scalar(select(func.clock_timestamp()))
        assert opened is not None
        cursor = Cursor(at=opened - timedelta(seconds=settle_s), event_id=_LAST_UUID)
        stored = session.execute(
            apply_filters(select(Event), filters=filters, scope=scope)
            .with_only_columns(Event.event_id, Event.updated_at)
            .where(Event.updated_at > cursor.at)
        )
        return StreamStart(cursor=cursor, stored=frozenset((i, at) for i, at in stored))


def changes_after(
    *,
    session: Session,
    filters: EventFilters,
    scope: frozenset[str] | None,
    after: Cursor,
    settle_s: float,
    limit: int,
) -> list[Event]:
    """Rows changed after ``after`` and at least ``settle_s`` ago, oldest change first."""
    key = tuple_(Event.updated_at, Event.event_id)
    statement = (
        apply_filters(select(Event), filters=filters, scope=scope)
        .where(key > tuple_(after.at, after.event_id))
        .where(Event.updated_at <= func.now() - timedelta(seconds=settle_s))
        .order_by(Event.updated_at, Event.event_id)
        .limit(limit)
    )
    return list(session.scalars(statement))


def sse_message(*, event_id: str, event: str, data: str) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n"


async def sse_chunks(
    *,
    fetch: Fetch,
    start: StreamStart,
    limits: StreamLimits,
    stopping: threading.Event,
    render: Callable[[Event], str],
    key_valid: Callable[[], bool],
) -> AsyncIterator[str]:
    """The stream's text: changes as ``event`` messages, heartbeat comments when quiet, and an
    ``end`` message when the stream's time is up, the server stops or its key is no longer
    valid (checked every ``key_check_s``)."""
    yield f"retry: {limits.retry_ms}\n\n"
    cursor = start.cursor
    began = last_sent = key_checked = time.monotonic()
    reason = "stream time is up; reconnect to resume"
    while not stopping.is_set() and time.monotonic() - began < limits.max_duration_s:
        if time.monotonic() - key_checked >= limits.key_check_s:
            if not await run_in_threadpool(key_valid):
                reason = "the key was revoked or has expired"
                break
            key_checked = time.monotonic()
        rows = await run_in_threadpool(fetch, cursor)
        for row in rows:
            cursor = Cursor(at=row.updated_at, event_id=row.event_id)
            if start.already_stored(row):
                continue
            yield sse_message(event_id=cursor.encode(CURSOR_TAG), event="event", data=render(row))
            last_sent = time.monotonic()
        if time.monotonic() - last_sent >= limits.heartbeat_s:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        if len(rows) < limits.batch:
            await asyncio.sleep(limits.poll_s)
    reason = "server stopping" if stopping.is_set() else reason
    yield sse_message(event_id=cursor.encode(CURSOR_TAG), event="end", data=f'"{reason}"')


SSE_EXAMPLE = (
    "retry: 2000\n\n"
    f"id: dXwyMDI2LTExLTI4VDA5OjE0OjEw\nevent: event\ndata: {json.dumps(EXAMPLE_EVENT)}\n\n"
    ": keep-alive\n\n"
)


# One message of the stream, as SSE parsers see it; ``data`` of an ``event`` is an event (JSON).
SSE_MESSAGE_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "Send back as Last-Event-ID to resume."},
        "event": {"type": "string", "enum": ["event", "end"]},
        "data": {"type": "string"},
        "retry": {"type": "integer"},
    },
}


class EventStreamResponse(StreamingResponse):
    """An SSE response; ``on_done`` runs once when it is done being sent, however it ends
    (sent whole, the client gone, the server stopping), even if its body never started."""

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterator[str],
        status_code: int = 200,  # FastAPI's OpenAPI reads the class's default status here
        headers: dict[str, str] | None = None,
        *,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(content, status_code, headers)
        self.on_done = on_done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.on_done is not None:
                self.on_done()


@router.get(
    "/stream",
    response_class=EventStreamResponse,
    responses={
        200: {
            "description": "Server-Sent Events: ``event`` messages (data: an event as in GET "
            "/events/{id}), ``: keep-alive`` comments, a final ``end`` message.",
            "content": {
                "text/event-stream": {"schema": SSE_MESSAGE_SCHEMA, "example": SSE_EXAMPLE}
            },
        },
        **problems.responses(403, 422, 503),
    },
)
async def stream_events(
    request: Request,
    clients: ClientsDep,
    principal: ViewerDep,
    filters: Annotated[EventFilters, Query()],
    limits: Annotated[StreamLimits, Depends(get_stream_limits)],
    registry: Annotated[StreamRegistry, Depends(get_registry)],
    last_event_id: Annotated[
        str | None,
        Header(
            max_length=256,
            pattern=CURSOR_PATTERN,
            description="The last message id seen, to resume after it.",
        ),
    ] = None,
) -> EventStreamResponse:
    """Live events with the list's filters: those stored after the stream opened (or after
    ``Last-Event-ID``)."""
    check_camera_scope(request, principal, filters.camera_id)
    if last_event_id is not None:
        try:
            start = StreamStart(cursor=Cursor.decode(last_event_id, CURSOR_TAG))
        except ValueError as exc:
            raise invalid_field(("header", "last-event-id"), str(exc)) from exc
    else:
        start = await run_in_threadpool(
            lambda: stream_start(
                sessions=clients.sessions,
                filters=filters,
                scope=principal.camera_ids,
                settle_s=limits.settle_s,
            )
        )
    chunks = sse_chunks(
        fetch=_fetcher(clients.sessions, filters, principal.camera_ids, limits),
        start=start,
        limits=limits,
        stopping=registry.stopping,
        render=lambda row: _render(row, snapshots_of(clients)),  # links fresh per message
        key_valid=lambda: _key_valid(clients.sessions, principal),
    )
    if not registry.reserve():
        detail = f"{registry.max_streams} event streams are open; retry in a few seconds"
        retry = {"Retry-After": str(RETRY_AFTER_S)}
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail, retry)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return EventStreamResponse(chunks, headers=headers, on_done=registry.release)


def _fetcher(
    sessions: sessionmaker[Session],
    filters: EventFilters,
    scope: frozenset[str] | None,
    limits: StreamLimits,
) -> Fetch:
    def fetch(after: Cursor) -> list[Event]:
        with sessions() as session:
            rows = changes_after(
                session=session,
                filters=filters,
                scope=scope,
                after=after,
                settle_s=limits.settle_s,
                limit=limits.batch,
            )
            session.expunge_all()
            return rows

    return fetch


def _key_valid(sessions: sessionmaker[Session], principal: Principal) -> bool:
    with sessions() as session:
        return still_valid(session=session, principal=principal, now=datetime.now(UTC))


def _render(row: Event, snapshots: Snapshots) -> str:
    return event_out(row, snapshots).model_dump_json()
