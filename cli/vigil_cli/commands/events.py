"""``vigil events``: list (filtered, paged), show, review, and tail (the live stream)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from vigil_cli.client import ApiClient, connect
from vigil_cli.options import TIME_HELP, Reason, time_option
from vigil_cli.output import (
    Column,
    JsonOption,
    console,
    details,
    emit_json_line,
    err_console,
    short_time,
    show,
    table,
)
from vigil_cli.sse import messages

app = typer.Typer(name="events", help="Anomaly events: list, review, follow live.")
EventId = Annotated[str, typer.Argument(help="The event's id.")]
Cameras = Annotated[
    list[str] | None, typer.Option("--camera", "-c", help="Only this camera (repeatable).")
]
MinScore = Annotated[float | None, typer.Option(help="Peak score at least this.")]
RECONNECT_S = 2.0  # what the stream's retry field asks for

COLUMNS: list[Column] = [
    ("started", lambda e: short_time(e.get("started_at"))),
    ("camera", "camera_id"),
    ("score", "score"),
    ("label", "label"),
    ("status", "status"),
    ("review", "review.verdict"),
    ("model", "model_id"),
    ("event id", "event_id"),
]
DETAIL: list[Column] = [
    *COLUMNS,
    ("ended", lambda e: short_time(e.get("ended_at"))),
    ("threshold", "threshold"),
    ("peak frame", "frame_seq"),
    ("review label", "review.label"),
    ("note", "review.note"),
    ("snapshot", "snapshot_url"),
]


@app.command("list")
def list_events(
    camera: Cameras = None,
    min_score: MinScore = None,
    status: Annotated[str | None, typer.Option(help="open or ended.")] = None,
    review: Annotated[
        str | None, typer.Option(help="unreviewed, confirmed or false_positive.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(callback=time_option, help=f"Started at or after: {TIME_HELP}.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Events, newest first (--json: the page, with next_cursor)."""
    with connect() as api:
        page = api.get(
            "/api/v1/events",
            camera_id=camera,
            min_score=min_score,
            status=status,
            review=review,
            started_from=since,
            limit=limit,
            cursor=cursor,
        )
    show(page, as_json, lambda: _page(page))


def _page(page: dict[str, Any]) -> None:
    table(page["items"], COLUMNS, title="Events")
    if page.get("next_cursor"):
        console().print(f"more: --cursor {page['next_cursor']}")


@app.command("show")
def show_event(event_id: EventId, as_json: JsonOption = False) -> None:
    """One event, with its review and a snapshot link valid 5 minutes."""
    with connect() as api:
        event = api.get(f"/api/v1/events/{event_id}")
    show(event, as_json, lambda: details(event, DETAIL, title=f"event {event_id}"))


@app.command("review")
def review_event(
    event_id: EventId,
    verdict: Annotated[str, typer.Option(help="confirmed or false_positive.")],
    label: Annotated[
        str | None, typer.Option(help="What it is (or what fooled the model).")
    ] = None,
    note: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """Record an operator's verdict on an event (operator)."""
    body = {"verdict": verdict, "label": label, "note": note}
    with connect() as api:
        event = api.post(f"/api/v1/events/{event_id}/feedback", body)
    show(event, as_json, lambda: details(event, DETAIL, title=f"event {event_id}"))


def follow(api: ApiClient, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Events from the live stream as they come, forever: when the server ends a stream (its
    15 minutes are up, or it is stopping) this reconnects with the last id and loses nothing."""
    last_id: str | None = None
    while True:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        with api.stream("/api/v1/events/stream", params=params, headers=headers) as response:
            for message in messages(response.iter_lines()):
                last_id = message.id or last_id
                if message.event == "event":
                    yield json.loads(message.data)
                elif message.event == "end":
                    break
        time.sleep(RECONNECT_S)


@app.command("tail")
def tail(
    camera: Cameras = None,
    min_score: MinScore = None,
    count: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many events (default: never).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Follow events as they start, change and are reviewed (Ctrl-C stops).

    --json prints one event per line (JSON lines).
    """
    params = {"camera_id": camera, "min_score": min_score}
    seen = 0
    with connect() as api:
        if not as_json:
            err_console().print(f"following {api.url} (Ctrl-C stops)", style="dim")
        try:
            for event in follow(api, params):
                if as_json:
                    emit_json_line(event)
                else:
                    console().print(_line(event))
                seen += 1
                if count is not None and seen >= count:
                    return
        except KeyboardInterrupt:
            return


def _line(event: dict[str, Any]) -> str:
    review = (event.get("review") or {}).get("verdict")
    return (
        f"{short_time(event.get('started_at'))}  {event['camera_id']:<16} "
        f"score {event.get('score', 0):.3f}  {event.get('status')}"
        + (f"  {event['label']}" if event.get("label") else "")
        + (f"  reviewed: {review}" if review else "")
        + f"  {event['event_id']}"
    )


@app.command("delete")
def delete_event(event_id: EventId, reason: Reason = None) -> None:
    """Delete an event and its snapshots (operator); a message of it arriving later is not
    stored."""
    with connect() as api:
        api.delete(f"/api/v1/events/{event_id}", reason=reason)
    err_console().print(f"event {event_id} deleted", markup=False)
