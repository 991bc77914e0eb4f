"""The closed loop on one camera, against the real servers: events reviewed, a candidate scored
in shadow on live frames until its shadow report passes and promotes it, then a model that
flags every frame promoted and rolled back by the rollback watch, all readable from the API.

The camera streams a synthetic walkway clip over and over: 30 frames of the scene the models
learnt, then 6 in which a figure walks where it never did, so each model under test raises the
same events while the one with threshold 0 flags every frame. Models are registered directly
(the registry rows and artifacts of ``tests.factories``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_rows, camera_body, make_model, scene_bank, scene_jpeg
from tests.integration.conftest import StartService
from tests.support import ServiceProcess, wait_until
from vigil_shared.kafka import make_producer
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.storage import put_bytes
from vigil_shared.topics import Topics

pytestmark = pytest.mark.slow
QUIET, HOT = 30, 6
CLIP = QUIET + HOT
SPAN = 2 * CLIP
LIFECYCLE = {
    # An event lasts at most 0.3 s of capture (3 frames): one that flags every frame raises one
    # after another, the figure's 6 frames two.
    "VIGIL_INFERENCE_EVENT_MAX_DURATION_S": "0.3",
    "VIGIL_INFERENCE_EVENT_SILENCE_S": "3600",
}


def store_model(s3: Minio, sessions: sessionmaker[Session], bucket: str, threshold: float) -> str:
    """A scene-bank model (artifact and manifest in S3, registry row) with ``threshold``."""
    artifact, template = scene_bank()
    model_id = f"m-loop-{uuid.uuid4().hex[:10]}"
    key = ModelManifest.artifact_key_for(model_id)
    manifest = template.model_copy(
        update={"model_id": model_id, "artifact_key": key, "threshold": threshold}
    )
    put_bytes(s3, bucket, key, artifact, "application/octet-stream")
    body = manifest.model_dump_json(by_alias=True).encode()
    put_bytes(s3, bucket, ModelManifest.manifest_key(model_id), body, "application/json")
    row = make_model(
        model_id,
        artifact_key=key,
        manifest_key=ModelManifest.manifest_key(model_id),
        artifact_sha256=manifest.artifact_sha256,
        threshold=threshold,
    )
    add_rows(sessions, [row])
    return model_id


class Camera:
    """Streams the clip to the frames topic, ``clips`` at a time, numbering frames on, each
    captured now (or 0.1 s after the one before, when sent faster), as a live camera's."""

    def __init__(self, kafka: KafkaSettings, topics: Topics) -> None:
        self.id = f"loop-{uuid.uuid4().hex[:8]}"
        self._kafka = kafka
        self._topic = topics.frames
        self.sent = 0
        self._captured = datetime.now(UTC)

    def stream(self, clips: int = 1) -> None:
        producer = make_producer(self._kafka)
        for _ in range(clips * CLIP):
            step = self.sent % CLIP
            # The bank holds steps 0-11; steps from 12 on put the figure where it never was.
            scene = step % 12 if step < QUIET else 12 + (step - QUIET) * 4
            self._captured = max(datetime.now(UTC), self._captured + timedelta(seconds=0.1))
            headers = FrameHeaders(
                camera_id=self.id, seq=self.sent, captured_at=self._captured, width=180, height=120
            )
            producer.send(
                self._topic,
                key=self.id.encode(),
                value=scene_jpeg(scene),
                headers=headers.to_kafka_headers(),
            )
            self.sent += 1
        producer.flush()
        producer.close()


def get(api: TestClient, path: str, **params: Any) -> Any:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def post(api: TestClient, path: str, body: dict[str, Any]) -> Any:
    response = api.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def services(start_service: StartService) -> Iterator[dict[str, ServiceProcess]]:
    run = uuid.uuid4().hex[:8]
    yield {
        "sink": start_service(
            "vigil_api.consumers.sink_main", VIGIL_API_SINK_GROUP_ID=f"sink-{run}"
        ),
        "loop": start_service(
            "vigil_api.consumers.loop_main",
            VIGIL_LOOP_GROUP_ID=f"loop-{run}",
            VIGIL_LOOP_TICK_S="1",
            VIGIL_LOOP_SHADOW_SPAN_FRAMES=str(SPAN),
            VIGIL_LOOP_SHADOW_SETTLE_S="5",
            VIGIL_LOOP_AUTO_PROMOTE="true",
            VIGIL_LOOP_WATCH_S="600",
            **LIFECYCLE,
        ),
    }


def test_reviewed_candidate_passes_shadow_is_promoted_and_a_flood_is_rolled_back(
    kafka_settings: KafkaSettings,
    topics: Topics,
    s3: Minio,
    settings: CommonSettings,
    sessions: sessionmaker[Session],
    api: TestClient,
    services: dict[str, ServiceProcess],
    start_service: StartService,
) -> None:
    bucket = settings.s3.models_bucket
    production, candidate, flood = (store_model(s3, sessions, bucket, t) for t in (0.05, 0.05, 0.0))
    camera = Camera(kafka_settings, topics)
    created = api.post("/api/v1/cameras", json=camera_body(camera.id))
    assert created.status_code == 201, created.text
    post(api, f"/api/v1/models/{production}/promote", {"scope": [camera.id]})
    inference = start_service(
        "vigil_inference",
        VIGIL_INFERENCE_GROUP_ID=f"inference-{camera.id}",
        VIGIL_INFERENCE_SNAPSHOTS="false",
        VIGIL_INFERENCE_BATCH_SIZE="8",
        **LIFECYCLE,
    )
    running = [inference, *services.values()]

    def alive() -> None:
        for service in running:
            service.assert_running()

    # 1. Production raises events; an operator confirms some and rejects others.
    camera.stream(clips=4)

    def production_events() -> list[dict[str, Any]] | None:
        alive()
        page = get(api, "/api/v1/events", camera_id=camera.id, limit=100)["items"]
        events = [e for e in page if e["model_id"] == production]
        return events if len(events) >= 4 else None

    events = wait_until(production_events, timeout_s=240, what="production's events")
    for n, event in enumerate(events[:4]):
        verdict = "confirmed" if n % 2 == 0 else "false_positive"
        post(api, f"/api/v1/events/{event['event_id']}/feedback", {"verdict": verdict})

    # 2. The candidate runs in shadow on live frames until a report closes; it passes and the
    # loop promotes it.
    post(api, f"/api/v1/models/{candidate}/shadow", {"scope": [camera.id]})

    def report() -> dict[str, Any] | None:
        alive()
        reports = get(api, "/api/v1/shadow-reports", camera_id=camera.id)
        if reports:
            return dict(reports[0])
        camera.stream()  # until the shadow assignment is followed and a span is full
        return None

    shadow = wait_until(report, timeout_s=300, what="a shadow report")
    assert shadow["shadow_model_id"] == candidate and shadow["production_model_id"] == production
    assert shadow["passed"], shadow["reasons"]
    assert shadow["frames"] == SPAN and shadow["agreement"] == 1.0
    assert shadow["would_be_events"] == shadow["production_events"] > 0

    def promoted() -> bool:
        alive()
        rows = get(api, "/api/v1/shadow-reports", camera_id=camera.id)
        return bool(rows[0]["promoted"])

    wait_until(promoted, timeout_s=60, what="the candidate's automatic promotion")
    assignments = {a["scope"]: a for a in get(api, "/api/v1/models/assignments")}
    assert assignments[camera.id]["production_model_id"] == candidate

    # 3. A model that flags every frame is promoted: the watch rolls it back by itself.
    post(api, f"/api/v1/models/{flood}/promote", {"scope": [camera.id]})

    def rolled_back() -> dict[str, Any] | None:
        alive()
        watches = {w["model_id"]: w for w in get(api, "/api/v1/rollback-watches")}
        watch = watches.get(flood)
        if watch is not None and watch["status"] != "watching":
            return dict(watch)
        camera.stream()
        return None

    watch = wait_until(rolled_back, timeout_s=300, what="the flood's automatic rollback")
    assert watch["status"] == "rolled_back", watch
    assert watch["reason"].startswith("event rate"), watch["reason"]
    assert watch["previous_model_id"] == candidate
    assignments = {a["scope"]: a for a in get(api, "/api/v1/models/assignments")}
    assert assignments[camera.id]["production_model_id"] == candidate

    # 4. The whole chain, in order, from the camera's timeline.
    steps = get(api, f"/api/v1/cameras/{camera.id}/loop")["steps"]

    def first(kind: str, **match: Any) -> int:
        found = [
            n
            for n, s in enumerate(steps)
            if s["kind"] == kind and all(s[k] == v for k, v in match.items())
        ]
        assert found, f"no {kind} {match} in {[s['kind'] for s in steps]}"
        return found[0]

    chain = [
        first("promote", actor="env-admin"),
        first("review", ref=events[0]["event_id"]),
        first("shadow"),
        first("shadow_report", ref=shadow["id"]),
        first("promote", actor="shadow-report"),
        first("promote", ref=watch["change_id"]),
        first("rollback", actor="rollback-watch"),
    ]
    assert chain == sorted(chain), [steps[n] for n in chain]
    assert first("rollback_watch", ref=watch["id"]) > chain[5]  # the watch's ending, and why
    auto, rollback = steps[chain[4]], steps[chain[6]]
    assert shadow["id"] in auto["summary"]
    assert watch["reason"] in rollback["summary"]
    reviews = [s for s in steps if s["kind"] == "review"]
    assert sorted(s["detail"]["model_id"] for s in reviews) == [production] * 4
