"""At least once: a worker killed mid-batch loses no event, and replays repeat the same ids."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import scene_jpeg, send_frame
from tests.integration.conftest import StartService
from tests.support import read_topic, wait_until
from vigil_shared.db.models import Job
from vigil_shared.kafka import make_producer
from vigil_shared.schemas.events import AnomalyEvent
from vigil_shared.schemas.jobs import DatasetRef, JobStatus, OneClassSpec
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.storage import put_bytes
from vigil_shared.topics import Topics
from vigil_trainer.one_class import fit_one_class
from vigil_trainer.registry import register

pytestmark = pytest.mark.slow
FRAMES = 160


def registry_model(s3: Minio, settings: CommonSettings, sessions: sessionmaker[Session]) -> str:
    """A small one-class model fitted on the scene's first frames, as the trainer would."""
    prefix = f"recovery-{uuid.uuid4().hex[:8]}/"
    for step in range(12):
        put_bytes(
            s3,
            settings.s3.datasets_bucket,
            f"{prefix}{step:03d}.jpg",
            scene_jpeg(step),
            "image/jpeg",
        )
    spec = OneClassSpec(name="recovery", dataset=DatasetRef(prefix=prefix), image_size=96, k=1)
    with sessions.begin() as session:
        job = Job(
            name=spec.name,
            task=spec.task,
            spec=spec.model_dump(mode="json"),
            status=JobStatus.SUCCEEDED,
            progress={},
        )
        session.add(job)
    fitted = fit_one_class(
        s3,
        bucket=settings.s3.datasets_bucket,
        spec=spec,
        device="cpu",
        batch_size=16,
        progress=lambda _: None,
    )
    manifest = register(
        s3=s3,
        bucket=settings.s3.models_bucket,
        sessions=sessions,
        job_id=job.id,
        spec=spec,
        fitted=fitted,
    )
    return manifest.model_id


def test_killed_worker_loses_no_event_and_replays_identical_ids(
    kafka_settings: KafkaSettings,
    topics: Topics,
    s3: Minio,
    settings: CommonSettings,
    sessions: sessionmaker[Session],
    start_service: StartService,
) -> None:
    model_id = registry_model(s3, settings, sessions)
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    producer = make_producer(kafka_settings)
    for seq in range(FRAMES):
        send_frame(producer, topics.frames, camera_id=camera, seq=seq, payload=scene_jpeg(seq))
    producer.flush()
    producer.close()
    env = {
        "VIGIL_INFERENCE_GROUP_ID": f"inference-{camera}",
        "VIGIL_INFERENCE_MODEL_ID": model_id,
        "VIGIL_INFERENCE_THRESHOLD": "0",  # every frame is an event: none may go missing
        "VIGIL_INFERENCE_BATCH_SIZE": "8",
        "VIGIL_INFERENCE_THREADS": "1",
    }

    first = start_service("vigil_inference", **env)
    wait_until(
        lambda: len(read_topic(kafka_settings, topics.events, count=40, timeout_s=2)) >= 40,
        timeout_s=180,
        what="the first worker to emit 40 events",
    )
    first.kill()
    before = len(read_topic(kafka_settings, topics.events, count=FRAMES, timeout_s=3))
    assert before < FRAMES, "the worker finished before it was killed; the test proves nothing"

    second = start_service("vigil_inference", **env)

    def all_frames() -> list[AnomalyEvent] | None:
        second.assert_running()
        records = read_topic(kafka_settings, topics.events, count=FRAMES + 64, timeout_s=3)
        events = [AnomalyEvent.model_validate_json(r.value) for r in records]
        return events if len({e.frame_seq for e in events}) >= FRAMES else None

    events = wait_until(all_frames, timeout_s=300, what=f"events for all {FRAMES} frames")
    assert second.stop() == 0
    assert {e.frame_seq for e in events} == set(range(FRAMES))
    by_id: dict[uuid.UUID, list[AnomalyEvent]] = defaultdict(list)
    for event in events:
        by_id[event.event_id].append(event)
    assert len(by_id) == FRAMES, "a replayed frame must keep its event id"
    for copies in by_id.values():
        assert {(e.camera_id, e.frame_seq, e.model.id) for e in copies} == {
            (camera, copies[0].frame_seq, model_id)
        }
        assert max(e.score for e in copies) - min(e.score for e in copies) < 1e-4
