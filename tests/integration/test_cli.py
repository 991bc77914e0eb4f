"""The ``vigil`` CLI against the real API, served by ``python -m vigil_api`` on a free port:
every command's ``--json`` output parsed, and failures that exit with their kind's code and
the problem's message (401/403: 4, 404: 5, 422: 6, unreachable: 3)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from minio import Minio
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from bench.footage import write_video
from tests.factories import (
    add_events,
    add_rows,
    add_stored_model,
    good_entries,
    make_event,
    scene_jpeg,
    send_current_frames,
    zip_bytes,
)
from tests.integration.api_server import RunningApi, own_models_bucket, start_api
from tests.integration.conftest import ADMIN_KEY
from tests.integration.test_api_dataset_compose import send_frames
from tests.integration.test_api_datasets import add_reviewed_event
from tests.integration.test_api_gate import evaluated, figures
from tests.unit.test_archive_videos import walker
from vigil_cli.main import app
from vigil_shared.db.models import Job, JobLog
from vigil_shared.db.replay_models import Replay, ReplayEvent
from vigil_shared.settings import KafkaSettings

Vigil = Callable[..., Result]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with own_models_bucket():
        running = start_api(tmp_path_factory.mktemp("api"))
        yield running
        # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly
        assert running.process.stop() in (0, -signal.SIGTERM), running.process.log()[-2000:]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "vigil" / "config.toml"


@pytest.fixture
def vigil(server: RunningApi, config_file: Path) -> Vigil:
    """Run a command in process; the key comes from VIGIL_API_KEY (admin unless given)."""
    runner = CliRunner()

    def run(*args: str, key: str | None = ADMIN_KEY, stdin: str | None = None) -> Result:
        env = {"VIGIL_URL": server.url, "VIGIL_API_KEY": key, "VIGIL_CONFIG": str(config_file)}
        return runner.invoke(app, list(args), env=env, input=stdin)

    return run


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


def failed(result: Result, code: int, *texts: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    for text in texts:
        assert text in result.stderr, result.stderr


def test_login_keeps_url_and_key_in_a_private_file(
    vigil: Vigil, server: RunningApi, config_file: Path, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(ADMIN_KEY + "\n")
    done = ok_json(vigil("login", "--url", server.url, "--key-file", str(key_file), "--json"))
    assert done == {"url": server.url, "config": str(config_file)}
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_file.parent.stat().st_mode) == 0o700
    # From now on the file alone is enough: no VIGIL_URL, no VIGIL_API_KEY.
    env = {"VIGIL_CONFIG": str(config_file), "VIGIL_URL": None, "VIGIL_API_KEY": None}
    listed = CliRunner().invoke(app, ["models", "list", "--json"], env=env)
    assert listed.exit_code == 0 and isinstance(json.loads(listed.stdout), list)
    config_file.unlink()
    refused = vigil("login", "--url", server.url, "--key-file", "-", stdin="not-a-key\n")
    failed(refused, 4, "Unauthorized (401)", "not valid", "vigil login")
    assert not config_file.exists(), "a refused key is not kept"


def test_cameras(vigil: Vigil) -> None:
    camera_id = f"cli-{uuid.uuid4().hex[:8]}"
    source = "rtsp://user:secret@cam.local/main"
    added = ok_json(vigil("cameras", "add", camera_id, "--source", source, "--fps", "2", "--json"))
    assert added["id"] == camera_id and added["target_fps"] == 2 and added["enabled"]
    assert "secret" not in added["source"]
    assert camera_id in {c["id"] for c in ok_json(vigil("cameras", "list", "--json"))}
    assert ok_json(vigil("cameras", "disable", camera_id, "--json"))["enabled"] is False
    assert ok_json(vigil("cameras", "enable", camera_id, "--json"))["enabled"] is True
    assert ok_json(vigil("cameras", "show", camera_id, "--json"))["status"] is None
    human = vigil("cameras", "show", camera_id)
    assert human.exit_code == 0 and camera_id in human.stdout and "no report yet" in human.stdout
    failed(vigil("cameras", "add", camera_id, "--source", source), 1, "Conflict (409)")
    failed(vigil("cameras", "show", "no-such-cam"), 5, "Not Found (404)", "no-such-cam")
    failed(
        vigil("cameras", "add", "x", "--source", source, "--fps", "-1"),
        6,
        "Unprocessable Entity (422)",
        "body.target_fps",
        "request id: ",
    )
    ok_json(vigil("cameras", "remove", camera_id, "--json"))
    failed(vigil("cameras", "show", camera_id), 5)


def test_keys_and_what_a_weaker_key_is_told(vigil: Vigil) -> None:
    created = ok_json(
        vigil("keys", "create", "--name", "wall", "--role", "viewer", "-c", "lobby", "--json")
    )
    assert created["role"] == "viewer" and created["camera_ids"] == ["lobby"]
    viewer = created["key"]
    listed = ok_json(vigil("keys", "list", "--json"))
    assert created["id"] in {k["id"] for k in listed} and "key" not in listed[0]
    failed(vigil("keys", "list", key=viewer), 4, "Forbidden (403)", "admin role")
    failed(vigil("cameras", "add", "x", "--source", "rtsp://a/b", key=viewer), 4, "operator role")
    revoked = ok_json(vigil("keys", "revoke", created["id"], "--json"))
    assert revoked["revoked_at"] is not None
    failed(vigil("cameras", "list", key=viewer), 4, "Unauthorized (401)")
    assert created["id"] in {k["id"] for k in ok_json(vigil("keys", "list", "--all", "--json"))}
    failed(vigil("keys", "list", key=None), 4, "no API key", "vigil login")
    failed(vigil("keys", "create", "--name", "x", "--role", "root"), 6, "body.role")


def test_datasets_upload_list_show(vigil: Vigil, tmp_path: Path) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    archive = tmp_path / "set.zip"
    archive.write_bytes(zip_bytes(good_entries()))
    first = ok_json(vigil("datasets", "upload", name, str(archive), "--description", "x", "--json"))
    assert first["created"] is True and first["n_items"] > 0 and first["description"] == "x"
    again = ok_json(vigil("datasets", "upload", name, str(archive), "--json"))
    assert again["created"] is False and again["version"] == first["version"]
    assert name in {d["name"] for d in ok_json(vigil("datasets", "list", "--json"))}
    shown = ok_json(vigil("datasets", "show", name, "--json"))
    assert [v["version"] for v in shown["versions"]] == [first["version"]]
    human = vigil("datasets", "upload", name, str(archive))
    assert human.exit_code == 0 and "identical" in human.stdout
    bad = tmp_path / "bad.zip"
    bad.write_bytes(zip_bytes({"normal/a.jpg": b"not a jpeg"}))
    failed(vigil("datasets", "upload", name, str(bad)), 6, "body.archive.normal/a.jpg")
    failed(vigil("datasets", "show", "no-such-set"), 5, "does not exist")


def test_datasets_built_from_a_camera_its_events_and_other_datasets(
    vigil: Vigil, server: RunningApi, sessions: sessionmaker[Session], s3: Minio
) -> None:
    camera, footage, reviewed, both = (f"cli-{uuid.uuid4().hex[:8]}" for _ in range(4))
    kafka = KafkaSettings(topic_namespace=server.env["VIGIL_KAFKA_TOPIC_NAMESPACE"])
    start = send_frames(kafka, camera, list(range(8)))  # one a second
    span = ["--start", (start + timedelta(seconds=1)).isoformat()]
    span += ["--end", (start + timedelta(seconds=6.5)).isoformat()]

    made = ok_json(vigil("datasets", "from-camera", footage, "--camera", camera, *span,
                         "--every-n", "2", "--description", "hall", "--json"))  # fmt: skip
    assert made["label_counts"] == {"normal": 3} and made["camera_ids"] == [camera]  # 1, 3, 5
    assert made["description"] == "hall"
    failed(vigil("datasets", "from-camera", footage, "--camera", "no-such-camera", *span), 6,
           "sent no frames")  # fmt: skip
    failed(vigil("datasets", "from-camera", footage, "--camera", camera, "--start", "monday",
                 "--end", span[3]), 6, "body.start")  # fmt: skip

    add_reviewed_event(sessions, s3, camera, "confirmed", "bicycle")
    add_reviewed_event(sessions, s3, camera, "false_positive", None)
    events = ok_json(vigil("datasets", "from-events", reviewed, "--camera", camera, "--json"))
    assert events["label_counts"] == {"bicycle": 1, "normal": 1}
    confirmed = vigil("datasets", "from-events", f"{reviewed}-c", "--camera", camera,
                      "--review", "confirmed", "--json")  # fmt: skip
    assert ok_json(confirmed)["label_counts"] == {"bicycle": 1}

    composed = ok_json(vigil("datasets", "compose", both, "--part", footage,
                             "--part", f"{reviewed}=normal", "--json"))  # fmt: skip
    assert composed["label_counts"] == {"normal": 5}
    pinned = vigil("datasets", "compose", f"{both}-p", "--part", f"{footage}@{made['version']}",
                   "--json")  # fmt: skip
    assert ok_json(pinned)["n_items"] == 3
    failed(vigil("datasets", "compose", both, "--part", "no-such-set"), 6, "no-such-set")
    failed(vigil("datasets", "compose", both, "--part", "a@"), 2, "DATASET@VERSION")


def test_cameras_retrain_is_refused_without_a_production_model(vigil: Vigil) -> None:
    camera = f"cli-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    span = ["--start", (now - timedelta(hours=1)).isoformat(), "--end", now.isoformat()]
    failed(vigil("cameras", "retrain", camera, *span), 5, "does not exist")
    ok_json(vigil("cameras", "add", camera, "--source", "rtsp://127.0.0.1:5545/x", "--json"))
    failed(vigil("cameras", "retrain", camera, *span), 1, "production model")
    failed(vigil("cameras", "retrain", camera, "--start", span[3], "--end", span[1]), 6,
           "end must be after start")  # fmt: skip
    # Times relative to now are sent as the API's ISO times.
    failed(vigil("cameras", "retrain", camera, "--start", "-2h", "--end", "now"), 1,
           "production model")  # fmt: skip
    failed(vigil("cameras", "retrain", camera, "--start", "now", "--end", "-2h"), 6,
           "end must be after start")  # fmt: skip
    failed(vigil("cameras", "retrain", camera, "--start", "yesterday", "--end", "now"), 6,
           "body.start")  # fmt: skip


def test_one_recording_is_uploaded_under_its_label(vigil: Vigil, tmp_path: Path) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    recording = tmp_path / "monday.mp4"
    write_video(recording, (walker(i) for i in range(6)), fps=5)
    created = ok_json(vigil("datasets", "upload", name, str(recording), "--json"))
    assert created["n_items"] == 6 and created["label_counts"] == {"normal": 6}
    night = ok_json(vigil("datasets", "upload", name, str(recording), "--label", "night", "--json"))
    assert night["created"] is True and night["label_counts"] == {"night": 6}
    slower = vigil("datasets", "upload", name, str(recording), "--video-fps", "2.5", "--json")
    assert ok_json(slower)["n_items"] == 3
    broken = tmp_path / "cut.mp4"
    broken.write_bytes(recording.read_bytes()[: recording.stat().st_size // 3])
    failed(vigil("datasets", "upload", name, str(broken)), 6, "body.archive.normal/cut.mp4")


@pytest.fixture
def dataset(vigil: Vigil, tmp_path: Path) -> str:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    archive = tmp_path / "set.zip"
    archive.write_bytes(zip_bytes(good_entries()))
    ok_json(vigil("datasets", "upload", name, str(archive), "--json"))
    return name


def act_as_trainer(sessions: sessionmaker[Session], job_id: str, *, ok: bool) -> threading.Thread:
    """What the trainer writes into a job's row, step by step, ending as told."""
    steps: list[dict[str, Any]] = [
        {"status": "running", "progress": {"stage": "loading", "step": 1, "total": 4}},
        {
            "progress": {
                "stage": "train",
                "epoch": 2,
                "epochs": 3,
                "step": 1,
                "total": 2,
                "eta_s": 4.0,
                "metrics": {"macro_f1": 0.75},
            }
        },
        {"status": "succeeded", "model_id": "m-cli"}
        if ok
        else {"status": "failed", "error": "no frames"},
    ]

    def run() -> None:
        for values in steps:
            time.sleep(0.4)
            with sessions.begin() as session:
                session.execute(update(Job).where(Job.id == uuid.UUID(job_id)).values(**values))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_jobs_submit_watch_logs_list(
    vigil: Vigil, dataset: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    job = ok_json(vigil("jobs", "submit", "--name", "cli", "--dataset", dataset, "--json"))
    assert job["status"] == "queued" and job["spec"]["dataset"]["name"] == dataset
    trainer = act_as_trainer(sessions, job["id"], ok=True)
    watched = ok_json(vigil("jobs", "watch", job["id"], "--interval", "0.2", "--json"))
    trainer.join()
    assert watched["status"] == "succeeded" and watched["model_id"] == "m-cli"
    with sessions.begin() as session:
        session.add_all(
            JobLog(job_id=uuid.UUID(job["id"]), level="info", message=f"line {i}") for i in range(3)
        )
    lines = vigil("jobs", "logs", job["id"], "--follow", "--json")
    assert [json.loads(x)["message"] for x in lines.stdout.splitlines()] == [
        "line 0",
        "line 1",
        "line 2",
    ]
    page = ok_json(vigil("jobs", "list", "--name", "cli", "--json"))
    assert job["id"] in {j["id"] for j in page["items"]}
    assert ok_json(vigil("jobs", "show", job["id"], "--json"))["status"] == "succeeded"
    failed(vigil("jobs", "cancel", job["id"]), 1, "Conflict (409)", "already succeeded")
    failed(vigil("jobs", "show", str(uuid.uuid4())), 5, "does not exist")

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "cli", "task": "one_class", "dataset": {"name": dataset}}))
    second = ok_json(vigil("jobs", "submit", "--spec", str(spec), "--json"))
    act_as_trainer(sessions, second["id"], ok=False)
    failing = vigil("jobs", "watch", second["id"], "--interval", "0.2")
    assert failing.exit_code == 8 and "failed: no frames" in failing.stderr


def test_a_job_without_weights_is_refused_with_how_to_import_them(
    vigil: Vigil, dataset: str
) -> None:
    refused = vigil(
        "jobs", "submit", "--name", "g", "--dataset", dataset, "--task", "classify",
        "--architecture", "resnet18",
    )  # fmt: skip
    failed(refused, 6, "body.architecture", "python -m vigil_trainer import-weights")


def test_models_list_show_compare_promote_shadow_rollback(
    vigil: Vigil, sessions: sessionmaker[Session], s3: Minio
) -> None:
    a = add_stored_model(sessions, s3, metrics={"auroc": 0.8})
    b = add_stored_model(sessions, s3, metrics={"auroc": 0.9})
    camera = f"cli-{uuid.uuid4().hex[:8]}"
    ok_json(vigil("cameras", "add", camera, "--source", "rtsp://cam.local/x", "--json"))
    assert {a, b} <= {m["id"] for m in ok_json(vigil("models", "list", "--json"))}
    assert ok_json(vigil("models", "show", a, "--json"))["id"] == a
    compared = ok_json(vigil("models", "compare", a, b, "--json"))
    assert compared["metrics"]["auroc"]["delta"] == pytest.approx(0.1)
    ok_json(vigil("models", "promote", a, "-c", camera, "--json"))
    (change,) = ok_json(vigil("models", "promote", b, "-c", camera, "--json"))
    assert change["production_model_id"] == b and change["previous_production_model_id"] == a
    (shadowed,) = ok_json(vigil("models", "shadow", a, "-c", camera, "--json"))
    assert shadowed["shadow_model_id"] == a and shadowed["production_model_id"] == b
    back = ok_json(vigil("models", "rollback", "-c", camera, "--json"))
    assert back["production_model_id"] == a
    assert camera in ok_json(vigil("models", "show", a, "--json"))["assignments"][0]["scope"]
    failed(vigil("models", "promote", a), 2, "--camera ID")
    failed(vigil("models", "show", "no-such-model"), 5, "Not Found (404)")

    changes = ok_json(vigil("models", "history", "-c", camera, "--json"))
    assert [(c["action"], c["model_id"]) for c in changes] == [
        ("rollback", a), ("shadow", a), ("promote", b), ("promote", a)
    ]  # fmt: skip
    assert all(c["actor"] for c in changes)
    assert len(ok_json(vigil("models", "history", "-c", camera, "--model", b, "--json"))) == 3
    failed(vigil("models", "history", "-c", camera, "--global"), 2, "one scope")

    evaluated(sessions, model_id=b, production=a, camera=camera,
              ours=figures(0.91, 1.0, 0.4), theirs=figures(0.86, 0.5, 2.1))  # fmt: skip
    (found,) = ok_json(vigil("models", "evaluations", "-c", camera, "--json"))
    assert (found["model_id"], found["production_model_id"]) == (b, a)
    assert ok_json(vigil("models", "evaluations", "--model", a, "-c", camera, "--json")) == [found]
    human = vigil("models", "evaluations", "-c", camera)
    assert human.exit_code == 0 and "0.910" in human.stdout and "(0.860)" in human.stdout


def test_the_gate_policies_checks_and_an_admins_override(
    vigil: Vigil, sessions: sessionmaker[Session], s3: Minio
) -> None:
    production, candidate = (add_stored_model(sessions, s3) for _ in range(2))
    camera = f"cli-{uuid.uuid4().hex[:8]}"
    ok_json(vigil("cameras", "add", camera, "--source", "rtsp://cam.local/x", "--json"))
    ok_json(vigil("models", "promote", production, "-c", camera, "--json"))
    policy = ok_json(vigil("gate", "set", camera, "--auroc-tolerance", "0.01", "--json"))
    assert (policy["auroc_tolerance"], policy["recall_tolerance"]) == (0.01, None)
    assert camera in {p["scope"] for p in ok_json(vigil("gate", "policies", "--json"))}
    failed(vigil("gate", "set", camera), 2, "at least one rule")

    evaluated(sessions, model_id=candidate, production=production, camera=camera,
              ours=figures(0.80, 1.0, 0.4), theirs=figures(0.86, 1.0, 0.4))  # fmt: skip
    check = vigil("gate", "check", candidate, "--scope", camera, "--json")
    assert check.exit_code == 1 and json.loads(check.stdout)["passed"] is False
    human = vigil("gate", "check", candidate, "--scope", camera)
    assert human.exit_code == 1 and "is refused" in human.stdout and "auroc" in human.stdout
    failed(vigil("models", "promote", candidate, "-c", camera), 1, "Conflict (409)",
           "--override-gate REASON")  # fmt: skip
    why = "glare fix checked by hand"
    (change,) = ok_json(vigil("models", "promote", candidate, "-c", camera,
                              "--override-gate", why, "--json"))  # fmt: skip
    assert change["production_model_id"] == candidate
    assert why in ok_json(vigil("models", "history", "-c", camera, "--json"))[0]["reason"]
    decided = ok_json(vigil("gate", "decisions", "--model", candidate, "--json"))
    assert decided and not any(d["passed"] for d in decided)

    assert vigil("gate", "clear", camera).exit_code == 0
    assert camera not in {p["scope"] for p in ok_json(vigil("gate", "policies", "--json"))}
    failed(vigil("gate", "clear", camera), 5, "no gate policy")


def test_a_cameras_current_frame_is_saved(vigil: Vigil, server: RunningApi, tmp_path: Path) -> None:
    camera = f"cli-{uuid.uuid4().hex[:8]}"
    ok_json(vigil("cameras", "add", camera, "--source", "rtsp://cam.local/x", "--json"))
    failed(vigil("cameras", "frame", camera, "-o", str(tmp_path / "none.jpg")), 5, "sent no frame")
    kafka = KafkaSettings(topic_namespace=server.env["VIGIL_KAFKA_TOPIC_NAMESPACE"])
    send_current_frames(kafka, camera, count=3)
    saved = ok_json(vigil("cameras", "frame", camera, "-o", str(tmp_path / "now.jpg"), "--json"))
    assert saved["seq"] == 2 and saved["captured_at"]
    assert (tmp_path / "now.jpg").read_bytes() == scene_jpeg(2)
    failed(vigil("cameras", "frame", "no-such-camera"), 5, "does not exist")


def test_deletions_of_an_event_a_dataset_version_and_a_model(
    vigil: Vigil, sessions: sessionmaker[Session], s3: Minio, tmp_path: Path
) -> None:
    camera = f"cli-{uuid.uuid4().hex[:8]}"
    (event_id,) = add_events(sessions, [make_event(camera, 0)])
    assert vigil("events", "delete", event_id, "--reason", "erasure request 7").exit_code == 0
    failed(vigil("events", "show", event_id), 5, "")

    name = f"cli-{uuid.uuid4().hex[:8]}"
    archive = tmp_path / "set.zip"
    archive.write_bytes(zip_bytes(good_entries()))
    version = ok_json(vigil("datasets", "upload", name, str(archive), "--json"))["version"]
    assert vigil("datasets", "delete", name, version, "--reason", "test").exit_code == 0
    failed(vigil("datasets", "delete", name, version), 5, "has no version")

    kept, unused = (add_stored_model(sessions, s3) for _ in range(2))
    ok_json(vigil("cameras", "add", camera, "--source", "rtsp://cam.local/x", "--json"))
    ok_json(vigil("models", "promote", kept, "-c", camera, "--json"))
    failed(vigil("models", "delete", kept), 1, "Conflict (409)", "assign another model")
    assert vigil("models", "delete", unused).exit_code == 0
    failed(vigil("models", "show", unused), 5, "")


def finish_replay(
    sessions: sessionmaker[Session], replay_id: str, *, status: str, **values: Any
) -> None:
    """What the trainer leaves in a replay's row when it ends (set at once: a real trainer that
    takes the task later sees it finished and leaves it)."""
    with sessions.begin() as session:
        session.execute(
            update(Replay)
            .where(Replay.id == uuid.UUID(replay_id))
            .values(status=status, finished_at=datetime.now(UTC), **values)
        )


def test_replays_start_watch_list_show_events(
    vigil: Vigil, sessions: sessionmaker[Session], s3: Minio
) -> None:
    model = add_stored_model(sessions, s3)
    camera = f"cli-{uuid.uuid4().hex[:8]}"
    ok_json(vigil("cameras", "add", camera, "--source", "rtsp://cam.local/x", "--json"))
    span = ["--start", "-1h", "--end", "now"]
    replay = ok_json(vigil("replays", "start", model, "-c", camera, *span, "--json"))
    assert (replay["status"], replay["model_id"], replay["camera_ids"]) == (
        "queued",
        model,
        [camera],
    )
    found = {"frames_scored": 120, "replay_events": 1, "production_events": 2,
             "production_missed": [], "reviews": {"confirmed": 0, "false_positive": 1}}  # fmt: skip
    finish_replay(sessions, replay["id"], status="succeeded", report=found)
    started = datetime.now(UTC) - timedelta(minutes=30)
    add_rows(sessions, [ReplayEvent(
        event_id=uuid.uuid4(), scope_key=replay["scope_key"], replay_id=uuid.UUID(replay["id"]),
        camera_id=camera, model_id=model, frame_seq=40, started_at=started,
        ended_at=started + timedelta(seconds=8), peak_score=3.25, peak_frame_seq=44,
        threshold=1.0, label=None,
    )])  # fmt: skip

    watched = ok_json(vigil("replays", "watch", replay["id"], "--interval", "0.2", "--json"))
    assert watched["status"] == "succeeded" and watched["report"] == found
    assert replay["id"] in {r["id"] for r in ok_json(vigil("replays", "list", "--json"))}
    human = vigil("replays", "show", replay["id"])
    assert human.exit_code == 0 and "120" in human.stdout and "succeeded" in human.stdout
    (event,) = ok_json(vigil("replays", "events", replay["id"], "--json"))
    assert (event["camera_id"], event["peak_score"]) == (camera, 3.25)

    second = ok_json(vigil("replays", "start", model, "-c", camera, "--start", "-2h",
                           "--end", "-1h", "--json"))  # fmt: skip
    finish_replay(sessions, second["id"], status="failed", error="no frames retained")
    gone = vigil("replays", "watch", second["id"], "--interval", "0.2")
    assert gone.exit_code == 8 and "failed: no frames retained" in gone.stderr
    failed(vigil("replays", "start", "no-such-model", "-c", camera, *span), 6, "body.model_id")
    failed(vigil("replays", "start", model, "-c", "no-such-camera", *span), 6, "unknown camera")
    failed(vigil("replays", "show", str(uuid.uuid4())), 5, "not found")


def test_events_list_show_review_and_tail(
    vigil: Vigil, server: RunningApi, sessions: sessionmaker[Session], config_file: Path
) -> None:
    camera = f"cli-{uuid.uuid4().hex[:8]}"
    ids = add_events(sessions, [make_event(camera, minute) for minute in range(3)])
    page = ok_json(vigil("events", "list", "-c", camera, "--limit", "2", "--json"))
    assert [e["event_id"] for e in page["items"]] == ids[::-1][:2] and page["next_cursor"]
    assert ok_json(vigil("events", "show", ids[0], "--json"))["camera_id"] == camera
    reviewed = ok_json(
        vigil("events", "review", ids[0], "--verdict", "confirmed", "--label", "cart", "--json")
    )
    assert reviewed["review"]["verdict"] == "confirmed"
    failed(vigil("events", "list", "--cursor", "nope"), 6, "query.cursor")

    # tail as a user runs it: the console script's module, a process, the stream followed.
    env = {**server.env, "VIGIL_URL": server.url, "VIGIL_API_KEY": ADMIN_KEY,
           "VIGIL_CONFIG": str(config_file)}  # fmt: skip
    command = [sys.executable, "-m", "vigil_cli", "events", "tail", "-c", camera]
    tail = subprocess.Popen(
        [*command, "--count", "1", "--json"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(3)  # the stream carries what is stored after it opened
        (new,) = add_events(sessions, [make_event(camera, 10, status="open")])
        out, _ = tail.communicate(timeout=30)
    finally:
        tail.kill()
    assert tail.returncode == 0
    assert [json.loads(line)["event_id"] for line in out.splitlines()] == [new]


def test_an_unreachable_api_is_exit_3(config_file: Path) -> None:
    env = {
        "VIGIL_URL": "http://127.0.0.1:9",
        "VIGIL_API_KEY": "k",
        "VIGIL_CONFIG": str(config_file),
    }
    result = subprocess.run(
        [sys.executable, "-m", "vigil_cli", "cameras", "list", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3 and result.stdout == ""
    assert "cannot reach the API at http://127.0.0.1:9" in result.stderr


def test_demo_datasets_from_the_generated_scene(vigil: Vigil, tmp_path: Path) -> None:
    """Without Ped2 the demo sets are cut from FFmpeg's test scene (with Ped2: the README test)."""
    result = ok_json(vigil("demo", "datasets", "--ped2", str(tmp_path / "absent"), "--json"))
    assert result["source"] == "generated"
    normal, labeled = result["datasets"]
    assert normal["name"] == "walkway-normal" and set(normal["label_counts"]) == {"normal"}
    assert labeled["name"] == "walkway-labeled"
    assert set(labeled["label_counts"]) == {"normal", "abnormal"}
    shown = ok_json(vigil("datasets", "show", "walkway-normal", "--json"))
    assert shown["versions"][-1]["version"] == normal["version"]
