"""``vigil cameras``: list, show, add, enable, disable, remove, its current frame, retrain."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from vigil_cli.client import connect
from vigil_cli.commands.jobs import DETAIL as JOB_DETAIL
from vigil_cli.commands.jobs import watch_job
from vigil_cli.options import End, EveryN, GapS, SegmentS, Start, given
from vigil_cli.output import Column, JsonOption, console, details, short_time, show, table

app = typer.Typer(name="cameras", help="Cameras: where ingest reads frames.", no_args_is_help=True)
CameraId = Annotated[str, typer.Argument(help="The camera's id.")]


def _status(camera: Mapping[str, Any]) -> str:
    status = camera.get("status")
    if not status:
        return "no report yet"
    state = str(status.get("state"))
    reason = status.get("reason")
    return f"{state} ({reason})" if reason and state != "online" else state


COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("enabled", "enabled"),
    ("status", _status),
    ("fps", "status.fps"),
    ("last frame", lambda c: short_time((c.get("status") or {}).get("last_frame_at"))),
    ("model", "model_id"),
]
DETAIL: list[Column] = [
    *COLUMNS,
    ("source", "source"),
    ("target fps", "target_fps"),
    ("size", lambda c: f"{c['max_width']}x{c['max_height']}"),
    ("masks", lambda c: len(c.get("masks") or [])),
    ("frames dropped", "status.frames_dropped"),
    ("scored by", "scoring.model_id"),
    ("scoring problem", "scoring.problem"),
    ("rate notice", "rate_notice"),
]


def _one(camera: dict[str, Any], as_json: bool) -> None:
    show(camera, as_json, lambda: details(camera, DETAIL, title=f"camera {camera['id']}"))


@app.command("list")
def list_cameras(
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: JsonOption = False,
) -> None:
    """Cameras this key sees, with ingest's latest status."""
    with connect() as api:
        cameras = api.get("/api/v1/cameras", limit=limit)
    show(cameras, as_json, lambda: table(cameras, COLUMNS, title="Cameras"))


@app.command("show")
def show_camera(camera_id: CameraId, as_json: JsonOption = False) -> None:
    """One camera: source (passwords shown as ***), sampling, masks, model and status."""
    with connect() as api:
        _one(api.get(f"/api/v1/cameras/{camera_id}"), as_json)


@app.command("add")
def add_camera(
    camera_id: CameraId,
    source: Annotated[str, typer.Option(help="rtsp://, http(s)://, push://?... or a file path.")],
    name: Annotated[str | None, typer.Option(help="Shown to operators (default: the id).")] = None,
    fps: Annotated[float, typer.Option(help="Frames a second to sample.")] = 5.0,
    disabled: Annotated[bool, typer.Option("--disabled", help="Register it switched off.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Register a camera (operator); ingest starts reading it if enabled."""
    body = {
        "id": camera_id,
        "name": name or camera_id,
        "source": source,
        "target_fps": fps,
        "enabled": not disabled,
    }
    with connect() as api:
        _one(api.post("/api/v1/cameras", body), as_json)


def _set_enabled(camera_id: str, enabled: bool, as_json: bool) -> None:
    with connect() as api:
        _one(api.patch(f"/api/v1/cameras/{camera_id}", {"enabled": enabled}), as_json)


@app.command("enable")
def enable(camera_id: CameraId, as_json: JsonOption = False) -> None:
    """Switch a camera on (operator)."""
    _set_enabled(camera_id, True, as_json)


@app.command("disable")
def disable(camera_id: CameraId, as_json: JsonOption = False) -> None:
    """Switch a camera off (operator): ingest stops reading it; its events stay."""
    _set_enabled(camera_id, False, as_json)


@app.command("remove")
def remove(camera_id: CameraId, as_json: JsonOption = False) -> None:
    """Delete a camera (operator)."""
    with connect() as api:
        removed = api.delete(f"/api/v1/cameras/{camera_id}")
    show(removed or {"id": camera_id}, as_json, lambda: typer.echo(f"camera {camera_id} removed"))


@app.command("retrain")
def retrain(
    camera_id: CameraId,
    start: Start,
    end: End,
    every_n: EveryN = 1,
    gap_s: GapS = None,
    segment_s: SegmentS = None,
    dataset: Annotated[
        str | None, typer.Option(help="Add the version to this dataset (default retrain-<id>).")
    ] = None,
    watch_it: Annotated[
        bool, typer.Option("--watch", help="Then watch the job to the end.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Retrain a camera's production model on its footage from --start to --end and its
    reviewed events (fleet-wide operator): a dataset version, then a job of the model's spec."""
    body = {"start": start, "end": end, "every_n": every_n}
    body |= given(gap_s=gap_s, segment_s=segment_s, dataset=dataset)
    with connect() as api:
        queued = api.post(f"/api/v1/cameras/{camera_id}/retrain", body)
        if watch_it:
            watch_job(api, str(queued["job"]["id"]), interval_s=1.0, as_json=as_json)
            return
    show(queued, as_json, lambda: _retrain_queued(queued))


def _retrain_queued(queued: Mapping[str, Any]) -> None:
    version = queued["dataset"]
    console().print(
        f"retraining {queued['production_model_id']}: dataset {version['name']} version "
        f"{str(version['version'])[:12]} ({version['n_items']} images)"
    )
    if queued.get("skipped_events"):
        console().print(f"skipped (no stored frame): {', '.join(queued['skipped_events'])}")
    job = queued["job"]
    details(job, JOB_DETAIL, title=f"job {job['id']} queued")


@app.command("frame")
def current_frame(
    camera_id: CameraId,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", dir_okay=False, help="Where (default: <camera id>.jpg)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Save the camera's latest frame (JPEG), as ingest sent it: to check its view."""
    target = output or Path(f"{camera_id}.jpg")
    with connect() as api:
        response = api.fetch("GET", f"/api/v1/cameras/{camera_id}/frame")
    target.write_bytes(response.content)
    saved = {
        "camera_id": camera_id,
        "path": str(target),
        "bytes": len(response.content),
        "seq": int(response.headers["X-Vigil-Frame-Seq"]),
        "captured_at": response.headers.get("X-Vigil-Captured-At") or None,
    }
    show(
        saved,
        as_json,
        lambda: console().print(
            f"frame {saved['seq']} of {camera_id} ({short_time(saved['captured_at'])}) saved to "
            f"{target}",
            markup=False,
        ),
    )
