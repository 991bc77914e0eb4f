"""The wire contract: frame headers, events and job specs reject what they must."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from vigil_shared.schemas.camera_status import CameraStatus
from vigil_shared.schemas.events import (
    EventMessage,
    EventPhase,
    ModelRef,
    event_id_for,
    message_id_for,
)
from vigil_shared.schemas.frames import FrameHeaders, MalformedFrameError
from vigil_shared.schemas.jobs import OneClassSpec

CAPTURED = datetime(2026, 11, 28, 12, 0, 0, 123000, tzinfo=UTC)


def headers(**overrides: object) -> FrameHeaders:
    fields: dict[str, object] = {
        "camera_id": "cam-1",
        "seq": 7,
        "captured_at": CAPTURED,
        "width": 360,
        "height": 240,
    }
    fields.update(overrides)
    return FrameHeaders.model_validate(fields)


def test_frame_headers_round_trip_through_kafka_headers() -> None:
    original = headers()
    kafka_headers = original.to_kafka_headers()
    assert ("vigil-schema", b"vigil.frame.v1") in kafka_headers
    assert FrameHeaders.from_kafka_headers(kafka_headers) == original


def test_missing_header_names_the_field() -> None:
    kafka_headers = [h for h in headers().to_kafka_headers() if h[0] != "vigil-seq"]
    with pytest.raises(MalformedFrameError, match="seq"):
        FrameHeaders.from_kafka_headers(kafka_headers)


def test_no_headers_at_all_is_malformed() -> None:
    with pytest.raises(MalformedFrameError):
        FrameHeaders.from_kafka_headers(None)


@pytest.mark.parametrize("camera_id", ["", "../etc", "a b", "x" * 65])
def test_camera_ids_are_restricted(camera_id: str) -> None:
    with pytest.raises(ValidationError):
        headers(camera_id=camera_id)


def test_event_ids_are_deterministic_per_camera_frame_capture_and_model() -> None:
    def eid(**over: object) -> object:
        args: dict[str, object] = {
            "camera_id": "cam-1",
            "frame_seq": 3,
            "captured_at": CAPTURED,
            "model_id": "m-1",
        }
        args.update(over)
        return event_id_for(**args)  # type: ignore[arg-type]

    first = eid()
    assert first == eid()
    assert first == eid(captured_at=CAPTURED.astimezone(timezone(timedelta(hours=2))))
    assert first != eid(frame_seq=4)
    assert first != eid(model_id="m-2")
    assert first != eid(camera_id="cam-2")
    # A restarted ingest numbers frames from 0 again: its frames must not collide.
    assert first != eid(captured_at=CAPTURED + timedelta(hours=1))


def message(phase: EventPhase = EventPhase.START, **over: object) -> EventMessage:
    event_id = event_id_for(camera_id="cam-1", frame_seq=3, captured_at=CAPTURED, model_id="w")
    fields: dict[str, object] = {
        "message_id": message_id_for(event_id=event_id, phase=phase, frame_seq=3),
        "event_id": event_id,
        "phase": phase,
        "camera_id": "cam-1",
        "frame_seq": 3,
        "captured_at": CAPTURED,
        "started_at": CAPTURED,
        "ended_at": CAPTURED if phase is EventPhase.END else None,
        "detected_at": CAPTURED,
        "score": 1.5,
        "peak_score": 1.5,
        "peak_frame_seq": 3,
        "peak_captured_at": CAPTURED,
        "threshold": 1.0,
        "model": ModelRef(id="warmup", kind="warmup"),
    }
    fields.update(over)
    return EventMessage.model_validate(fields)


def test_event_json_round_trip_keeps_every_field() -> None:
    event = message(label="bike", snapshot_key="events/cam-1/x/overlay.jpg")
    decoded = EventMessage.model_validate_json(event.to_json_bytes())
    assert decoded == event
    assert b'"schema":"vigil.event.v2"' in event.to_json_bytes()


def test_message_ids_differ_per_phase_and_frame_but_not_per_replay() -> None:
    event_id = event_id_for(camera_id="c", frame_seq=1, captured_at=CAPTURED, model_id="m")
    start = message_id_for(event_id=event_id, phase=EventPhase.START, frame_seq=1)
    assert start == message_id_for(event_id=event_id, phase=EventPhase.START, frame_seq=1)
    assert start != message_id_for(event_id=event_id, phase=EventPhase.UPDATE, frame_seq=1)
    assert start != message_id_for(event_id=event_id, phase=EventPhase.START, frame_seq=2)


def test_ended_at_belongs_to_end_messages_only() -> None:
    with pytest.raises(ValidationError, match="ended_at"):
        message(EventPhase.END, ended_at=None)
    with pytest.raises(ValidationError, match="ended_at"):
        message(EventPhase.UPDATE, ended_at=CAPTURED)


def test_event_rejects_naive_timestamps_and_unknown_fields() -> None:
    event = message().model_dump(mode="json", by_alias=True)
    with pytest.raises(ValidationError, match="captured_at"):
        EventMessage.model_validate({**event, "captured_at": "2026-11-28T12:00:00"})
    with pytest.raises(ValidationError, match="extra"):
        EventMessage.model_validate({**event, "surprise": 1})


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"name": "x", "dataset": {"name": "../up"}}, "dataset.name"),
        ({"name": "", "dataset": {"name": "ok"}}, "name"),
        ({"name": "x", "dataset": {"name": "ok"}, "image_size": 100}, "image_size"),
        ({"name": "x", "dataset": {"name": "ok"}, "task": "regress"}, "task"),
        ({"name": "x", "dataset": {"name": "ok"}, "lr": 0.1}, "lr"),
        ({"name": "x"}, "dataset"),
    ],
)
def test_job_spec_errors_name_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        OneClassSpec.model_validate(spec)
    locations = {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}
    assert field in locations


def test_camera_status_round_trips_and_refuses_unknown_states() -> None:
    status = CameraStatus(
        camera_id="gate-2",
        state="offline",
        reason="cannot open rtsp://10.0.0.7/s: Connection refused",
        since=CAPTURED,
        reported_at=CAPTURED,
        report_interval_s=10,
        fps=0,
        target_fps=5,
        frames_published=3,
        frames_dropped=1,
        frames_gated=0,
        reconnects=2,
    )
    assert CameraStatus.model_validate_json(status.to_json_bytes()) == status
    assert b'"schema":"vigil.camera-status.v1"' in status.to_json_bytes()
    with pytest.raises(ValidationError):
        CameraStatus.model_validate({**status.model_dump(by_alias=True), "state": "sleeping"})
