"""A promotion switches a camera's scoring live; a shadow model is scored but emits nothing."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from minio import Minio

from tests.factories import registry_models, scene_bank, scene_jpeg, send_frame
from tests.integration.rtsp import free_tcp_port
from tests.support import read_topic, wait_until
from vigil_inference.service import build_worker
from vigil_inference.settings import InferenceSettings
from vigil_inference.worker import InferenceWorker
from vigil_shared.kafka import make_producer
from vigil_shared.schemas.assignments import AssignmentAction, ModelAssignment
from vigil_shared.schemas.events import EventMessage
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.schemas.scoring_status import ScoringStatus
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.storage import put_bytes, sha256_hex
from vigil_shared.topics import Topics
from vigil_shared.vision.inferencer import read_manifest

pytestmark = pytest.mark.slow


def assign(
    kafka: KafkaSettings,
    topics: Topics,
    scope: str,
    production: str,
    shadow: str | None = None,
    sha256: str | None = None,
) -> None:
    assignment = ModelAssignment(
        change_id=uuid.uuid4(),
        scope=scope,
        production_model_id=production,
        shadow_model_id=shadow,
        production_artifact_sha256=sha256,
        action=AssignmentAction.PROMOTE,
        actor="test",
        changed_at=datetime.now(UTC),
    )
    producer = make_producer(kafka)
    producer.send(
        topics.model_assignments, key=assignment.kafka_key(), value=assignment.to_json_bytes()
    )
    producer.flush()
    producer.close()


def send_frames(kafka: KafkaSettings, topics: Topics, camera: str, seqs: range) -> None:
    producer = make_producer(kafka)
    for seq in seqs:
        send_frame(producer, topics.frames, camera_id=camera, seq=seq, payload=scene_jpeg(seq))
    producer.flush()
    producer.close()


@contextlib.contextmanager
def running_worker(monkeypatch: pytest.MonkeyPatch, **env: str) -> Iterator[InferenceWorker]:
    """An inference worker built from ``VIGIL_INFERENCE_<name>`` settings, run on a thread
    until the block ends."""
    for name, value in env.items():
        monkeypatch.setenv(f"VIGIL_INFERENCE_{name}", value)
    worker = build_worker(InferenceSettings())
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()


def sample(worker: InferenceWorker, name: str, **labels: str) -> float:
    return worker.metrics.registry.get_sample_value(name, labels) or 0.0


def test_promotion_switches_scoring_live_and_shadow_only_records(
    kafka_settings: KafkaSettings,
    topics: Topics,
    s3: Minio,
    settings: CommonSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = registry_models(s3, settings.s3.models_bucket, count=2)
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    assign(kafka_settings, topics, "*", old)  # read from the topic's start at boot
    send_frames(kafka_settings, topics, camera, range(40))
    with running_worker(
        monkeypatch,
        GROUP_ID=f"inference-{camera}",
        THRESHOLD="0",
        BATCH_SIZE="8",
        # Every frame gives one message (start, then end at once), naming the model that scored it.
        EVENT_OPEN_K="1",
        EVENT_OPEN_N="1",
        EVENT_MAX_DURATION_S="0.05",
        SNAPSHOTS="false",
    ) as worker:
        wait_until(lambda: worker.frames_scored >= 40, timeout_s=120, what="40 frames scored")
        assign(kafka_settings, topics, camera, new, shadow=old)
        wait_until(
            lambda: sample(worker, "vigil_inference_model_swaps_total") >= 1,
            timeout_s=30,
            what="the worker to swap the camera's model",
        )
        send_frames(kafka_settings, topics, camera, range(40, 80))
        wait_until(lambda: worker.frames_scored >= 80, timeout_s=120, what="80 frames scored")

    records = read_topic(kafka_settings, topics.events, count=80, timeout_s=15)
    models_by_frame: dict[int, set[str]] = defaultdict(set)
    for record in records:
        message = EventMessage.model_validate_json(record.value)
        models_by_frame[message.frame_seq].add(message.model.id)
    assert sorted(models_by_frame) == list(range(80)), "a frame was skipped"
    assert all(models_by_frame[seq] == {old} for seq in range(40))
    assert all(models_by_frame[seq] == {new} for seq in range(40, 80)), "shadow emitted"
    assert worker.frames_scored == 80, "a frame was scored twice"
    shadow_frames = sum(
        sample(worker, "vigil_inference_shadow_frames_total", model_id=old, shadow=s, production=p)
        for s in ("hot", "quiet")
        for p in ("hot", "quiet")
    )
    assert shadow_frames == 40


def test_a_model_that_cannot_load_leaves_the_camera_on_its_model(
    kafka_settings: KafkaSettings, topics: Topics, monkeypatch: pytest.MonkeyPatch
) -> None:
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    # Frames first: a group member that joins before the topic's metadata reached it may be
    # assigned nothing until its next metadata refresh.
    send_frames(kafka_settings, topics, camera, range(4))
    with running_worker(
        monkeypatch,
        GROUP_ID=f"inference-{camera}",
        WARMUP_FRAMES="2",
        THRESHOLD="0",
        SNAPSHOTS="false",
    ) as worker:
        wait_until(lambda: worker.frames_scored >= 4, timeout_s=120, what="4 frames scored")
        assign(kafka_settings, topics, "*", "no-such-model")
        wait_until(
            lambda: sample(worker, "vigil_inference_model_load_failures_total") >= 1,
            timeout_s=30,
            what="the failed load to be counted",
        )
        send_frames(kafka_settings, topics, camera, range(4, 8))
        wait_until(lambda: worker.frames_scored >= 8, timeout_s=60, what="8 frames scored")
    records = read_topic(kafka_settings, topics.events, count=2, timeout_s=10)
    messages = [EventMessage.model_validate_json(r.value) for r in records]
    assert {m.model.id for m in messages} == {"warmup"}
    assert sample(worker, "vigil_inference_model_swaps_total") == 0


def test_an_artifact_replaced_with_its_manifest_is_refused_and_shown(
    kafka_settings: KafkaSettings,
    topics: Topics,
    s3: Minio,
    settings: CommonSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whoever can write the bucket can replace an artifact *and* the manifest beside it: the
    registry's sha256 (the database's, carried by the assignment) is what catches it, and the
    fallback to the warm-up model shows in /readyz, the metrics and the scoring-status topic."""
    bucket = settings.s3.models_bucket
    (model_id,) = registry_models(s3, bucket)
    manifest = read_manifest(s3, bucket=bucket, model_id=model_id)
    registered = manifest.artifact_sha256
    forged, _ = scene_bank(frames=6)  # another bank, with a manifest that matches it
    put_bytes(s3, bucket, manifest.artifact_key, forged, "application/octet-stream")
    body = manifest.model_copy(update={"artifact_sha256": sha256_hex(forged)})
    put_bytes(
        s3,
        bucket,
        ModelManifest.manifest_key(model_id),
        body.model_dump_json(by_alias=True).encode(),
        "application/json",
    )
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    assign(kafka_settings, topics, "*", model_id, sha256=registered)
    port = free_tcp_port()
    send_frames(kafka_settings, topics, camera, range(6))
    with running_worker(
        monkeypatch,
        GROUP_ID=f"inference-{camera}",
        WARMUP_FRAMES="2",
        THRESHOLD="0",
        SNAPSHOTS="false",
        METRICS_PORT=str(port),
    ) as worker:
        wait_until(lambda: worker.frames_scored >= 6, timeout_s=120, what="6 frames scored")
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    assert ready.status_code == 503
    (problem,) = ready.json()["problems"]
    assert problem.startswith(f"camera {camera}: assigned model {model_id} cannot be loaded")
    assert f"the registry recorded {registered[:12]}" in problem and "scored by warmup" in problem
    assert sample(worker, "vigil_inference_cameras_on_fallback") == 1
    assert sample(worker, "vigil_inference_model_unloadable", model_id=model_id) == 1
    (record,) = read_topic(kafka_settings, topics.scoring_status, count=1, timeout_s=15)
    status = ScoringStatus.model_validate_json(record.value)
    assert (status.camera_id, status.model.id, status.assigned_model_id) == (
        camera,
        "warmup",
        model_id,
    )
    assert status.problem is not None and "the registry recorded" in status.problem
    events = read_topic(kafka_settings, topics.events, count=1, timeout_s=10)
    assert {EventMessage.model_validate_json(r.value).model.id for r in events} == {"warmup"}
