"""The CLI's pieces that need no server: the SSE parser, a job's progress as a bar, the
config file and its environment overrides, exit codes by status, and a camera's details."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vigil_cli import config
from vigil_cli.client import CliError, ExitCode, exit_code_for
from vigil_cli.commands.cameras import DETAIL
from vigil_cli.commands.datasets import parse_part
from vigil_cli.commands.models import DETAIL as MODEL_DETAIL
from vigil_cli.commands.models import expected_alarms, gate_refusal
from vigil_cli.options import when
from vigil_cli.output import details
from vigil_cli.progress import describe, eta_text
from vigil_cli.sse import messages


def test_sse_messages_follow_the_standard() -> None:
    lines = [
        "retry: 2000",
        "",
        "id: c1",
        "event: event",
        'data: {"a":',
        "data:1}",
        "",
        ": keep-alive",
        "",
        "event: end",
        'data: "time is up"',
        "",
        "data: unterminated",
    ]
    parsed = list(messages(lines))
    assert [(m.event, m.data, m.id) for m in parsed] == [
        ("event", '{"a":\n1}', "c1"),
        ("end", '"time is up"', "c1"),
    ]


@pytest.mark.parametrize(
    ("progress", "status", "label", "done", "total"),
    [
        ({}, "queued", "queued", 0, None),
        ({"stage": "loading", "step": 5, "total": 20}, "running", "loading", 5, 20),
        (
            {"stage": "train", "epoch": 2, "epochs": 4, "step": 1, "total": 2, "trial": 0,
             "trials": 8},
            "running",
            "train trial 1/8 epoch 2/4",
            1.5,
            4,
        ),
        ({"stage": "registering"}, "succeeded", "succeeded", 1, 1),
    ],
)  # fmt: skip
def test_progress_as_a_bar(
    progress: dict[str, object], status: str, label: str, done: float, total: float | None
) -> None:
    snapshot = describe({"status": status, "progress": progress})
    assert (snapshot.label, snapshot.completed, snapshot.total) == (label, done, total)


def test_progress_says_when_the_worker_is_lost() -> None:
    job = {"status": "running", "worker_lost": True, "progress": {"stage": "train"}}
    assert describe(job).label == "train (worker lost: no heartbeat)"


def test_progress_shows_eta_and_metrics() -> None:
    progress = {"stage": "train", "eta_s": 3725.2, "metrics": {"macro_f1": 0.8123, "note": "x"}}
    snapshot = describe({"status": "running", "progress": progress})
    assert eta_text(snapshot.eta_s) == "eta 1:02:05" and eta_text(None) == "eta -"
    assert snapshot.metrics == "macro_f1 0.812"


def test_config_file_is_private_and_the_environment_wins(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert config.load(env) == config.Config(url=config.DEFAULT_URL, key=None)
    path = config.save(config.Config(url="http://api:8000", key='k"ey\\1'), env)
    assert path == tmp_path / "vigil" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.load(env) == config.Config(url="http://api:8000", key='k"ey\\1')
    overridden = config.load({**env, "VIGIL_URL": "http://other/", "VIGIL_API_KEY": "k2"})
    assert overridden == config.Config(url="http://other", key="k2")
    path.write_text("url = [")
    with pytest.raises(config.ConfigError, match="vigil login"):
        config.load(env)


@pytest.mark.parametrize(
    ("status", "code"),
    [(401, ExitCode.AUTH), (403, ExitCode.AUTH), (404, ExitCode.NOT_FOUND),
     (422, ExitCode.INVALID), (413, ExitCode.INVALID), (409, ExitCode.ERROR),
     (503, ExitCode.SERVER)],
)  # fmt: skip
def test_exit_codes_by_status(status: int, code: ExitCode) -> None:
    assert exit_code_for(status) is code


def test_a_cameras_details_show_what_scores_it_and_its_notices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    camera = {
        "id": "demo",
        "name": "Demo",
        "enabled": True,
        "status": {"state": "online", "fps": 1.96, "frames_dropped": 0},
        "model_id": "m-1",
        "source": "rtsp://10.0.0.9/main",
        "target_fps": 2.0,
        "max_width": 640,
        "max_height": 480,
        "masks": [],
        "scoring": {"model_id": "m-1", "problem": None},
        "rate_notice": "camera at 2.0 fps, under half the rate",
    }
    details(camera, DETAIL, title="camera demo")
    shown = " ".join(capsys.readouterr().out.split())
    assert "scored by │ m-1" in shown and "scoring problem │ -" in shown
    assert "rate notice │ camera at 2.0 fps, under half the rate" in shown


def test_a_models_details_show_its_expected_false_alarms_and_debounce(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fa = {
        "per_hour": 1.0,
        "low": 0.12,
        "high": 8.2,
        "calibration_hours": 0.07,
        "open_k": 3,
        "open_n": 5,
        "close_after": 5,
    }
    assert expected_alarms(fa) == (
        "1 per camera-hour (90%: 0.12-8.2, from 4.2 min of normal footage; events opened on 3 "
        "of 5 hot frames, closed after 5 quiet ones)"
    )
    older = fa | {"open_k": None, "open_n": None, "close_after": None}
    assert (
        expected_alarms(older)
        == "1 per camera-hour (90%: 0.12-8.2, from 4.2 min of normal footage)"
    )
    assert expected_alarms(None) is None
    model = {"id": "m-1", "expected_false_alarms": fa, "assignments": []}
    details(model, MODEL_DETAIL, title="model m-1")
    shown = " ".join(capsys.readouterr().out.split())
    assert "expected false alarms │ 1 per camera-hour" in shown


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("footage", {"dataset": "footage"}),
        ("footage@abc123", {"dataset": "footage", "version": "abc123"}),
        ("alarms=normal", {"dataset": "alarms", "label": "normal"}),
        ("alarms@abc123=normal", {"dataset": "alarms", "version": "abc123", "label": "normal"}),
    ],
)
def test_a_composed_part_from_its_option(text: str, part: dict[str, str]) -> None:
    assert parse_part(text) == part


@pytest.mark.parametrize("text", ["", "@v", "a@", "a=", "a@=b", "=normal"])
def test_a_malformed_part_is_a_usage_error(text: str) -> None:
    with pytest.raises(CliError) as raised:
        parse_part(text)
    assert raised.value.code is ExitCode.USAGE


def test_times_relative_to_now_become_iso_times() -> None:
    now = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
    assert when("now", now) == "2026-12-08T12:00:00+00:00"
    assert when("-30m", now) == "2026-12-08T11:30:00+00:00"
    assert when(" -1.5H ", now) == "2026-12-08T10:30:00+00:00"
    assert when("-7d", now) == "2026-12-01T12:00:00+00:00"
    assert when("-90s", now) == "2026-12-08T11:58:30+00:00"
    # Anything else is the API's to judge (it names the field).
    for written in ("2026-12-08T08:00Z", "yesterday", "-5w", "+1h"):
        assert when(written, now) == written
    assert when(None, now) is None
    with pytest.raises(ValueError, match="before year 1"):
        when("-99999999999999d", now)


def test_a_gate_refusal_says_how_to_override_from_the_command_line() -> None:
    refused = CliError(
        "Conflict (409): the gate refused ...",
        ExitCode.ERROR,
        {"status": 409, "detail": 'lobby: auroc ...; or have an admin promote it with {"override"'},
    )
    told = gate_refusal(refused)
    assert "--override-gate REASON" in str(told)
    assert (told.code, told.problem) == (refused.code, refused.problem)
    other = CliError("Conflict (409): assigned", ExitCode.ERROR, {"status": 409, "detail": "x"})
    assert gate_refusal(other) is other
