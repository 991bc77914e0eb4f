"""``vigil replays``: a registry model over a time range of cameras' retained frames, its events
kept apart from the live ones (docs/live-loop.md, "Replay"): start, watch, list, show, events."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from vigil_cli.client import ApiClient, ExitCode, connect
from vigil_cli.options import End, Start
from vigil_cli.output import (
    Column,
    JsonOption,
    console,
    details,
    err_console,
    short_time,
    show,
    table,
)

app = typer.Typer(name="replays", help="Replays: a model over cameras' retained frames.")
ReplayId = Annotated[str, typer.Argument(help="The replay's id.")]
Interval = Annotated[float, typer.Option(min=0.2, help="Seconds between polls.")]
FINISHED = frozenset({"succeeded", "failed"})


def report(key: str) -> Any:
    return lambda r: (r.get("report") or {}).get(key)


COLUMNS: list[Column] = [
    ("id", "id"),
    ("model", "model_id"),
    ("cameras", "camera_ids"),
    ("from", lambda r: short_time(r.get("range_from"))),
    ("to", lambda r: short_time(r.get("range_to"))),
    ("status", "status"),
    ("frames", report("frames_scored")),
    ("events", report("replay_events")),
    ("production's", report("production_events")),
]
DETAIL: list[Column] = [
    *COLUMNS,
    ("production missed", lambda r: len((r.get("report") or {}).get("production_missed") or [])),
    ("reviews", report("reviews")),
    ("note", report("note")),
    ("error", "error"),
    ("by", "created_by"),
    ("created", lambda r: short_time(r.get("created_at"))),
    ("finished", lambda r: short_time(r.get("finished_at"))),
]
EVENT_COLUMNS: list[Column] = [
    ("started", lambda e: short_time(e.get("started_at"))),
    ("ended", lambda e: short_time(e.get("ended_at"))),
    ("camera", "camera_id"),
    ("peak", "peak_score"),
    ("threshold", "threshold"),
    ("label", "label"),
    ("event id", "event_id"),
]


@app.command("start")
def start_replay(
    model_id: Annotated[str, typer.Argument(help="The registry model to replay.")],
    camera: Annotated[
        list[str], typer.Option("--camera", "-c", help="A camera whose frames (repeatable).")
    ],
    start: Start,
    end: End,
    watch_it: Annotated[bool, typer.Option("--watch", help="Then watch it to the end.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Queue a replay of cameras' retained frames through a model (fleet-wide operator).

    Its events are kept apart: they never reach the live topics or alarms.
    """
    body = {"model_id": model_id, "camera_ids": camera, "start": start, "end": end}
    with connect() as api:
        replay: dict[str, Any] = api.post("/api/v1/replays", body)
        if watch_it:
            watch_replay(api, str(replay["id"]), interval_s=1.0, as_json=as_json)
            return
    show(replay, as_json, lambda: details(replay, DETAIL, title=f"replay {replay['id']} queued"))


def watch_replay(api: ApiClient, replay_id: str, *, interval_s: float, as_json: bool) -> None:
    """Poll the replay until it ends; exit 8 unless it succeeded."""
    with err_console().status(f"replay {replay_id}", spinner="dots") as line:
        while True:
            replay: dict[str, Any] = api.get(f"/api/v1/replays/{replay_id}")
            line.update(f"replay {replay_id}: {replay['status']}")
            if replay["status"] in FINISHED:
                break
            time.sleep(interval_s)
    show(replay, as_json, lambda: _outcome(replay))
    if replay["status"] != "succeeded":
        raise typer.Exit(int(ExitCode.JOB_FAILED))


def _outcome(replay: Mapping[str, Any]) -> None:
    if replay["status"] == "succeeded":
        details(replay, DETAIL, title=f"replay {replay['id']} succeeded")
    else:
        err_console().print(f"replay {replay['id']} {replay['status']}: {replay.get('error')}")


@app.command("watch")
def watch(replay_id: ReplayId, interval: Interval = 1.0, as_json: JsonOption = False) -> None:
    """Follow a replay to its end (exit 8 if it failed)."""
    with connect() as api:
        watch_replay(api, replay_id, interval_s=interval, as_json=as_json)


@app.command("list")
def list_replays(
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20, as_json: JsonOption = False
) -> None:
    """Replays, newest first, with what each found against production."""
    with connect() as api:
        replays = api.get("/api/v1/replays", limit=limit)
    show(replays, as_json, lambda: table(replays, COLUMNS, title="Replays"))


@app.command("show")
def show_replay(replay_id: ReplayId, as_json: JsonOption = False) -> None:
    """One replay and its report: events against production's, the reviews it agrees with."""
    with connect() as api:
        replay = api.get(f"/api/v1/replays/{replay_id}")
    show(replay, as_json, lambda: details(replay, DETAIL, title=f"replay {replay_id}"))


@app.command("events")
def replay_events(
    replay_id: ReplayId,
    limit: Annotated[int, typer.Option(min=1, max=5000)] = 500,
    as_json: JsonOption = False,
) -> None:
    """The events the replayed model would have raised, oldest first."""
    with connect() as api:
        events = api.get(f"/api/v1/replays/{replay_id}/events", limit=limit)
    show(events, as_json, lambda: _events(events, replay_id))


def _events(events: list[dict[str, Any]], replay_id: str) -> None:
    table(events, EVENT_COLUMNS, title=f"Events of replay {replay_id}")
    if not events:
        console().print("none: the model would have raised no event in that range")
