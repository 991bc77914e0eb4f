"""The closed loop on one camera, against the real servers: production's events reviewed, the
camera retrained in one call (the trainer fits the production spec on its footage and reviews
and evaluates the candidate against production), the gate asked, the candidate scored in shadow
on live frames until its shadow report passes and the loop promotes it, then a model that flags
every frame promoted (an admin's override of the gate) and rolled back by the rollback watch,
all readable from the camera's timeline.

The camera streams a synthetic walkway clip over and over: 30 frames of the scene the
production model learnt, 6 in which a figure walks where it never did (reviewers confirm those
events), 30 of the scene again, then 6 in which the light comes on (reviewers reject those). The
retrain fits on a stretch of the plain scene sent before, with the reviews: the candidate keeps
raising the figure and learns to leave the light alone, so in shadow it agrees with production
but on the light's frames. The production model and the flooding one (threshold 0: every frame
hot) are registered directly (the registry rows and artifacts of ``tests.factories``).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from minio import Minio
from PIL import Image, ImageEnhance
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_rows, camera_body, make_model, scene_bank, scene_jpeg
from tests.integration.conftest import StartService
from tests.support import ServiceProcess, wait_until
from vigil_shared.datasets import DatasetRef
from vigil_shared.kafka import make_producer
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.storage import put_bytes
from vigil_shared.topics import Topics

pytestmark = pytest.mark.slow
QUIET, HOT = 30, 6
FIGURE = range(QUIET, QUIET + HOT)
LIGHT = range(2 * QUIET + HOT, 2 * (QUIET + HOT))
CLIP = 2 * (QUIET + HOT)
SPAN = CLIP
LIFECYCLE = {
    # An event lasts at most 0.3 s of capture (3 frames): one that flags every frame raises one
    # after another, the figure's 6 frames two.
    "VIGIL_INFERENCE_EVENT_MAX_DURATION_S": "0.3",
    "VIGIL_INFERENCE_EVENT_SILENCE_S": "3600",
}


SPEC = OneClassSpec(
    name="loop", dataset=DatasetRef(name="scene"), image_size=96, appearance={"bank_size": 64}
).model_copy(update={"motion": None, "scene": None})
"""What a retrain fits again: small, appearance only (the clip repeats 12 frames exactly, so a
scene stream's normal range would be a point: real footage is never that still)."""


def store_model(s3: Minio, sessions: sessionmaker[Session], bucket: str, threshold: float) -> str:
    """A scene-bank model (artifact and manifest in S3, registry row) with ``threshold``, whose
    manifest records ``SPEC``."""
    artifact, template = scene_bank()
    model_id = f"m-loop-{uuid.uuid4().hex[:10]}"
    key = ModelManifest.artifact_key_for(model_id)
    manifest = template.model_copy(
        update={"model_id": model_id, "artifact_key": key, "threshold": threshold, "spec": SPEC}
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
        self.started = datetime.now(UTC)
        self._captured = self.started

    def stream(self, clips: int = 1, *, plain: bool = False) -> None:
        """``clips`` clips, or as many frames of the plain scene."""
        producer = make_producer(self._kafka)
        for _ in range(clips * CLIP):
            self._send(producer, scene_jpeg(self.sent % 12) if plain else self._frame())
        producer.flush()
        producer.close()

    @property
    def last_captured(self) -> datetime:
        return self._captured

    def _frame(self) -> bytes:
        step = self.sent % CLIP
        if step in FIGURE:  # the bank holds steps 0-11: from 12 on, where it never was
            return scene_jpeg(12 + (step - QUIET) * 4)
        if step in LIGHT:
            return lit_jpeg(step % 12)
        return scene_jpeg(step % 12)

    def _send(self, producer: KafkaProducer, jpeg: bytes) -> None:
        self._captured = max(datetime.now(UTC), self._captured + timedelta(seconds=0.1))
        headers = FrameHeaders(
            camera_id=self.id, seq=self.sent, captured_at=self._captured, width=180, height=120
        )
        producer.send(
            self._topic,
            key=self.id.encode(),
            value=jpeg,
            headers=headers.to_kafka_headers(),
            timestamp_ms=int(self._captured.timestamp() * 1000),  # read back by time
        )
        self.sent += 1


def lit_jpeg(step: int) -> bytes:
    """The scene at ``step`` with the light on (30% brighter)."""
    image = ImageEnhance.Brightness(Image.open(io.BytesIO(scene_jpeg(step)))).enhance(1.3)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def get(api: TestClient, path: str, **params: Any) -> Any:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def post(api: TestClient, path: str, body: dict[str, Any], status: int = 200) -> Any:
    response = api.post(path, json=body)
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def services(start_service: StartService) -> Iterator[dict[str, ServiceProcess]]:
    run = uuid.uuid4().hex[:8]
    yield {
        "trainer": start_service("vigil_trainer"),
        "sink": start_service(
            "vigil_api.consumers.sink_main", VIGIL_API_SINK_GROUP_ID=f"sink-{run}"
        ),
        "loop": start_service(
            "vigil_api.consumers.loop_main",
            VIGIL_LOOP_GROUP_ID=f"loop-{run}",
            VIGIL_LOOP_TICK_S="1",
            VIGIL_LOOP_SHADOW_SPAN_FRAMES=str(SPAN),
            VIGIL_LOOP_SHADOW_SETTLE_S="5",
            # The candidate is meant to differ from production on the light's frames (6 of 72).
            VIGIL_LOOP_SHADOW_MIN_AGREEMENT="0.8",
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
    production, flood = (store_model(s3, sessions, bucket, t) for t in (0.05, 0.0))
    camera = Camera(kafka_settings, topics)
    created = api.post("/api/v1/cameras", json=camera_body(camera.id))
    assert created.status_code == 201, created.text
    post(api, f"/api/v1/models/{production}/promote", {"scope": [camera.id]})
    inference = start_service(
        "vigil_inference",
        VIGIL_INFERENCE_GROUP_ID=f"inference-{camera.id}",
        VIGIL_INFERENCE_BATCH_SIZE="8",
        **LIFECYCLE,
    )
    running = [inference, *services.values()]

    def alive() -> None:
        for service in running:
            service.assert_running()

    # 1. Footage of the plain scene, then clips: production raises events; an operator confirms
    # the figure's and rejects the light's.
    camera.stream(clips=2, plain=True)
    footage_end = camera.last_captured
    camera.stream(clips=3)

    def production_events() -> list[dict[str, Any]] | None:
        alive()
        page = get(api, "/api/v1/events", camera_id=camera.id, limit=100)["items"]
        events = [e for e in page if e["model_id"] == production]
        return events if len(events) >= 6 else None

    events = wait_until(production_events, timeout_s=240, what="production's events")
    reviewed = {"confirmed": 0, "false_positive": 0}
    for event in events:
        step = event["frame_seq"] % CLIP
        verdict = "confirmed" if step in FIGURE else "false_positive" if step in LIGHT else None
        assert verdict is not None, f"an event on the plain scene: {event}"
        post(api, f"/api/v1/events/{event['event_id']}/feedback", {"verdict": verdict})
        reviewed[verdict] += 1
    assert min(reviewed.values()) >= 2, reviewed

    # 2. Retrain in one call: the camera's footage (in 2 s segments) and its reviews; the gate
    # reads the candidate's evaluation against production on the same held-out groups.
    body = {"start": camera.started.isoformat(), "end": footage_end.isoformat(), "segment_s": 2}
    retrained = post(api, f"/api/v1/cameras/{camera.id}/retrain", body, status=202)
    assert retrained["production_model_id"] == production

    def trained() -> dict[str, Any] | None:
        alive()
        job: dict[str, Any] = get(api, f"/api/v1/jobs/{retrained['job']['id']}")
        return job if job["status"] in {"succeeded", "failed"} else None

    job = wait_until(trained, timeout_s=300, what="the retrain job")
    assert job["status"] == "succeeded", job["error"]
    candidate = job["model_id"]
    (evaluation,) = get(api, "/api/v1/evaluations", camera_id=camera.id)
    assert evaluation["model_id"] == candidate and evaluation["production_model_id"] == production
    policy = {"auroc_tolerance": 1.0, "recall_tolerance": 1.0}
    assert api.put(f"/api/v1/gate-policies/{camera.id}", json=policy).status_code == 200
    decision = post(api, f"/api/v1/models/{candidate}/gate", {"scope": camera.id})
    assert decision["passed"] and decision["evaluation_id"] == evaluation["id"], decision

    # 3. The candidate runs in shadow on live frames until a report closes; it passes and the
    # loop promotes it (through the gate again).
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
    # It raises the figure as production does, and leaves the light (the rejected alarms) alone.
    assert shadow["frames"] == SPAN and 0.8 <= shadow["agreement"] < 1.0
    assert 0 < shadow["would_be_events"] < shadow["production_events"], shadow

    def promoted() -> bool:
        alive()
        rows = get(api, "/api/v1/shadow-reports", camera_id=camera.id)
        return bool(rows[0]["promoted"])

    wait_until(promoted, timeout_s=60, what="the candidate's automatic promotion")
    assignments = {a["scope"]: a for a in get(api, "/api/v1/models/assignments")}
    assert assignments[camera.id]["production_model_id"] == candidate

    # 4. A model that flags every frame is promoted (the gate has no evaluation of it: an admin
    # overrides), and the watch rolls it back by itself.
    override = {"reason": "rollback drill: a model that flags every frame"}
    post(api, f"/api/v1/models/{flood}/promote", {"scope": [camera.id], "override": override})

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

    # 5. The whole chain, in order, from the camera's timeline.
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
        first("dataset"),
        first("job", ref=job["id"]),
        first("evaluation", ref=evaluation["id"]),
        first("gate_decision", ref=decision["id"]),
        first("shadow"),
        first("shadow_report", ref=shadow["id"]),
        first("promote", actor="shadow-report"),
        first("promote", ref=watch["change_id"]),
        first("rollback", actor="rollback-watch"),
    ]
    assert chain == sorted(chain), [steps[n] for n in chain]
    assert first("rollback_watch", ref=watch["id"]) > chain[9]  # the watch's ending, and why
    auto, rollback = steps[chain[8]], steps[chain[10]]
    assert shadow["id"] in auto["summary"]
    assert watch["reason"] in rollback["summary"]
    reviews = [s for s in steps if s["kind"] == "review"]
    assert [s["detail"]["model_id"] for s in reviews] == [production] * sum(reviewed.values())
