"""Producers strict, consumers tolerant: a message from a newer producer, with a field this
version does not know, is read by today's consumers and valid against the published schema; the
frame-header schema describes the headers the real producer sends."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError, create_model

from tests.unit.ingest_fakes import TOPICS, FakeProducer, camera_settings, run_to_end, scripted
from tests.unit.test_event_contract import samples
from vigil_ingest.camera import build_camera
from vigil_ingest.metrics import IngestMetrics
from vigil_shared.schemas.assignments import ModelAssignment
from vigil_shared.schemas.camera_status import CameraStatus
from vigil_shared.schemas.events import EventMessage
from vigil_shared.schemas.export import DEFAULT_DIR
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.schemas.scoring_status import ScoringStatus
from vigil_shared.schemas.shadow_scores import ShadowScore
from vigil_shared.schemas.wire import WireMessage
from vigil_shared.settings import REPO_ROOT

TOPIC_MESSAGES: dict[str, tuple[type[WireMessage], str]] = {
    "vigil.event.v2": (EventMessage, "event.v2.json"),
    "vigil.camera-status.v1": (CameraStatus, "camera-status.v1.json"),
    "vigil.model-assignment.v1": (ModelAssignment, "model-assignment.v1.json"),
    "vigil.scoring-status.v1": (ScoringStatus, "scoring-status.v1.json"),
    "vigil.shadow-score.v1": (ShadowScore, "shadow-score.v1.json"),
}


def published_schema(schema_file: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((DEFAULT_DIR / schema_file).read_text())
    return schema


def published(schema_file: str) -> Draft202012Validator:
    return Draft202012Validator(published_schema(schema_file))


def with_new_fields(sample: dict[str, Any]) -> dict[str, Any]:
    """``sample`` as a newer producer would send it: a field more, and one more inside a nested
    object when it has one."""
    newer: dict[str, Any] = {**sample, "added_later": "north-fence"}
    for name, value in sample.items():
        if isinstance(value, dict):
            newer[name] = {**value, "version": 7}
    return newer


@pytest.mark.parametrize("sample", samples(), ids=lambda s: f"{s['schema']}-{s.get('phase', '')}")
def test_a_consumer_reads_a_newer_producers_message_and_ignores_the_new_fields(
    sample: dict[str, Any],
) -> None:
    model, schema_file = TOPIC_MESSAGES[sample["schema"]]
    newer = with_new_fields(sample)
    assert model.read_json(json.dumps(newer)) == model.read(sample)
    assert list(published(schema_file).iter_errors(newer)) == []


@pytest.mark.parametrize("sample", samples(), ids=lambda s: f"{s['schema']}-{s.get('phase', '')}")
def test_a_producer_cannot_send_a_field_its_schema_does_not_have(sample: dict[str, Any]) -> None:
    model, _ = TOPIC_MESSAGES[sample["schema"]]
    with pytest.raises(ValidationError, match="added_later"):
        model.model_validate(with_new_fields(sample))


def test_todays_event_sink_reads_a_message_from_a_newer_inference() -> None:
    [start, *_] = (s for s in samples() if s["schema"] == "vigil.event.v2")
    newer_model = create_model("NewerEvent", __base__=EventMessage, added_later=(str | None, None))
    newer = newer_model.model_validate({**start, "added_later": "north-fence"})
    assert EventMessage.read_json(newer.to_json_bytes()) == EventMessage.model_validate(start)


@pytest.mark.parametrize("model", [EventMessage, CameraStatus, ModelAssignment, FrameHeaders])
def test_topic_models_are_strict_and_their_published_schemas_open(
    model: type[WireMessage],
) -> None:
    assert '"additionalProperties": false' in json.dumps(model.model_json_schema())
    assert "additionalProperties" not in json.dumps(model.published_schema())


def ingest_headers(count: int) -> list[list[tuple[str, bytes]]]:
    """The headers of ``count`` frames as ingest's publish path writes them."""
    producer = FakeProducer()
    camera = build_camera(
        camera_settings(max_frames=count),
        producer=producer,
        metrics=IngestMetrics(),
        frames=scripted(count),
    )
    run_to_end(camera)
    return [sent.headers for sent in producer.sent if sent.topic == TOPICS.frames]


def test_the_frame_header_schema_describes_the_headers_ingest_sends() -> None:
    validator = published("frame-headers.v1.json")
    sent = ingest_headers(3)
    assert len(sent) == 3
    for headers in sent:
        as_json = {name: value.decode("utf-8") for name, value in headers}
        assert list(validator.iter_errors(as_json)) == []
        # "format": "date-time" is not checked by jsonschema without an extra package
        assert datetime.fromisoformat(as_json["vigil-captured_at"]).tzinfo is not None
        assert set(as_json) == set(published_schema("frame-headers.v1.json")["properties"])
    read = [FrameHeaders.from_kafka_headers(headers) for headers in sent]
    assert [(h.camera_id, h.seq) for h in read] == [("cam-1", 0), ("cam-1", 1), ("cam-1", 2)]


def test_inference_reads_frame_headers_with_a_header_it_does_not_know() -> None:
    [headers] = ingest_headers(1)
    newer = [*headers, ("vigil-added_later", b"north-fence"), ("vigil-error", b"a dead letter's")]
    assert FrameHeaders.from_kafka_headers(newer) == FrameHeaders.from_kafka_headers(headers)


def test_topics_md_lists_the_frame_headers_of_the_schema() -> None:
    text = (REPO_ROOT / "docs" / "topics.md").read_text()
    section = text.split("## Frame message", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    listed = {name for cell in first_cells for name in re.findall(r"`(vigil-[a-z_]+)`", cell)}
    assert listed == set(published_schema("frame-headers.v1.json")["properties"])
