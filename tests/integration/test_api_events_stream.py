"""The live event stream (SSE) against the real PostgreSQL: new and changed events arrive in
order, filtered and camera-scoped, with heartbeats; ``Last-Event-ID`` resumes; the stream ends
when its time is up and when the server stops."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_events, make_event
from tests.integration.conftest import IssueKey, bearer
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_api.routes.event_stream import StreamLimits, get_stream_limits
from vigil_cli.client import retry_after_s
from vigil_shared.db.models import Event

LIMITS = StreamLimits(poll_s=0.05, heartbeat_s=0.3, settle_s=0.1, max_duration_s=3.0)


@dataclass(frozen=True)
class Message:
    id: str | None
    event: str | None
    data: str | None
    comment: str | None


def parse(text: str) -> list[Message]:
    messages = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            fields.setdefault(name, value.removeprefix(" "))
        if fields:
            messages.append(
                Message(fields.get("id"), fields.get("event"), fields.get("data"), fields.get(""))
            )
    return messages


def events_of(messages: list[Message]) -> list[dict[str, Any]]:
    return [json.loads(m.data or "") for m in messages if m.event == "event"]


@pytest.fixture
def client(api: TestClient) -> Iterator[TestClient]:
    api.app.dependency_overrides[get_stream_limits] = lambda: LIMITS  # type: ignore[attr-defined]
    yield TestClient(api.app, headers={"Authorization": api.headers["Authorization"]})
    api.app.dependency_overrides.clear()  # type: ignore[attr-defined]


@pytest.fixture
def cameras() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"live-{suffix}", f"else-{suffix}"


def add_once_streaming(sessions: sessionmaker[Session], app: Any, rows: list[Event]) -> None:
    """Insert ``rows`` once a stream is open (it has taken its start position), one transaction
    each so they get increasing ``updated_at``."""

    def run() -> None:
        deadline = time.monotonic() + 10
        while app.state.event_streams.open == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        for row in rows:
            add_events(sessions, [row])

    threading.Thread(target=run, daemon=True).start()


def test_new_events_stream_in_order_scoped_filtered_with_heartbeats(
    client: TestClient,
    issue_key: IssueKey,
    sessions: sessionmaker[Session],
    cameras: tuple[str, str],
) -> None:
    mine, other = cameras
    add_events(sessions, [make_event(mine, 0)])  # before the stream opened: not sent
    rows = [make_event(mine, 1), make_event(other, 2), make_event(mine, 3, score=0.1)]
    rows.append(make_event(mine, 4))
    add_once_streaming(sessions, client.app, rows)
    headers = bearer(issue_key("viewer", camera_ids=[mine]))

    response = client.get("/api/v1/events/stream", params={"min_score": 0.5}, headers=headers)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = parse(response.text)
    received = events_of(messages)
    assert [e["event_id"] for e in received] == [str(rows[0].event_id), str(rows[3].event_id)]
    assert any(m.comment == "keep-alive" for m in messages)
    assert messages[-1].event == "end" and "time is up" in (messages[-1].data or "")


def test_a_stream_carries_the_changes_stored_after_it_opened(
    client: TestClient, sessions: sessionmaker[Session], cameras: tuple[str, str]
) -> None:
    """Not one committed just before it opened, however close; but one whose transaction began
    before and committed after it opened (its ``updated_at`` is older than the opening)."""
    mine, _ = cameras
    app: Any = client.app
    app.dependency_overrides[get_stream_limits] = lambda: StreamLimits(
        poll_s=0.05, heartbeat_s=10.0, settle_s=2.0, max_duration_s=4.5
    )
    before, late, after = make_event(mine, 0), make_event(mine, 1), make_event(mine, 2)
    add_events(sessions, [before])
    began = threading.Event()

    def commit_late_then_add() -> None:
        with sessions.begin() as session:
            session.add(late)
            session.flush()  # its updated_at is now: before the stream opens
            began.set()
            deadline = time.monotonic() + 10
            while app.state.event_streams.open == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
        add_events(sessions, [after])

    threading.Thread(target=commit_late_then_add, daemon=True).start()
    assert began.wait(10)
    response = client.get("/api/v1/events/stream", params={"camera_id": mine})

    sent = [e["event_id"] for e in events_of(parse(response.text))]
    assert sent == [str(late.event_id), str(after.event_id)]


def test_last_event_id_resumes_after_that_message_and_feedback_is_a_change(
    client: TestClient, api: TestClient, sessions: sessionmaker[Session], cameras: tuple[str, str]
) -> None:
    mine, _ = cameras
    rows = [make_event(mine, m) for m in range(3)]
    add_once_streaming(sessions, client.app, rows)
    first = parse(client.get("/api/v1/events/stream", params={"camera_id": mine}).text)
    sent = [m for m in first if m.event == "event"]
    assert len(sent) == 3

    api.post(f"/api/v1/events/{rows[2].event_id}/feedback", json={"verdict": "false_positive"})
    resumed = client.get(
        "/api/v1/events/stream",
        params={"camera_id": mine},
        headers={"Last-Event-ID": sent[0].id or ""},
    )
    again = events_of(parse(resumed.text))
    assert [e["event_id"] for e in again] == [str(r.event_id) for r in (rows[1], rows[2])]
    assert again[-1]["review"]["verdict"] == "false_positive"


def test_a_stopping_server_ends_streams_and_bad_resume_ids_are_422(
    client: TestClient, api: TestClient
) -> None:
    # A stream that would run a minute: ended at once by the stop, not by its time (the bound
    # leaves room for a loaded machine and none for the stream's own end).
    long = replace(LIMITS, max_duration_s=60.0)
    api.app.dependency_overrides[get_stream_limits] = lambda: long  # type: ignore[attr-defined]
    api.app.state.event_streams.stopping.set()  # type: ignore[attr-defined]
    started = time.monotonic()
    messages = parse(client.get("/api/v1/events/stream").text)
    assert time.monotonic() - started < 30.0
    assert messages[-1].event == "end" and "server stopping" in (messages[-1].data or "")
    assert api.app.state.event_streams.open == 0  # type: ignore[attr-defined]

    bad = client.get("/api/v1/events/stream", headers={"Last-Event-ID": "garbage"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "header.last-event-id"


def test_streams_past_the_bound_are_503_until_one_ends(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one slot, a second stream is refused while the first runs (with the Retry-After the
    CLI and the console wait for), and taken once it has ended."""
    monkeypatch.setenv("VIGIL_API_MAX_EVENT_STREAMS", "1")
    headers = {"Authorization": api.headers["Authorization"]}
    with TestClient(create_app(ApiSettings()), headers=headers) as one:
        app: Any = one.app
        app.dependency_overrides[get_stream_limits] = lambda: LIMITS
        first: list[str] = []
        running = threading.Thread(
            target=lambda: first.append(one.get("/api/v1/events/stream").text), daemon=True
        )
        running.start()
        deadline = time.monotonic() + 10
        while app.state.event_streams.open == 0 and time.monotonic() < deadline:
            time.sleep(0.02)

        refused = one.get("/api/v1/events/stream")

        assert refused.status_code == 503, refused.text
        assert "1 event streams are open" in refused.json()["detail"]
        assert retry_after_s(refused.status_code, refused.headers) == 5.0
        running.join(30)
        assert parse(first[0])[-1].event == "end"  # the first ran its time, undisturbed
        assert app.state.event_streams.open == 0  # its slot given back
        again = one.get("/api/v1/events/stream")
        assert again.status_code == 200 and parse(again.text)[-1].event == "end"
