"""At least once: a worker killed mid-batch loses no event message, and replays repeat its ids.

The restarted worker resumes from the committed offsets, which never pass the first frame an
open event depends on, so it rebuilds that event from the replayed frames with the same id.
"""

from __future__ import annotations

import signal
import uuid
from collections import defaultdict
from datetime import timedelta

import pytest
from minio import Minio

from tests.factories import T0, registry_models, scene_jpeg, send_frame
from tests.integration.conftest import StartService
from tests.support import read_topic, wait_until
from vigil_shared.event_lifecycle import EventTracker, LifecycleSettings, Observation
from vigil_shared.kafka import make_producer
from vigil_shared.schemas.events import EventMessage, ModelRef
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.topics import Topics

pytestmark = pytest.mark.slow
FRAMES = 300
LIFECYCLE = LifecycleSettings(max_duration_s=2.0, update_interval_s=0.5)


def expected_starts_and_ends(model_id: str) -> set[tuple[str, int]]:
    """Every frame is hot (threshold 0): starts and ends depend on the frame times only."""
    tracker = EventTracker(LIFECYCLE)
    out = set()
    for seq in range(FRAMES):
        frame = Observation(
            camera_id="cam",
            seq=seq,
            captured_at=T0 + timedelta(seconds=seq / 10),
            offset=seq,
            score=1.0,
            threshold=0.0,
            model=ModelRef(id=model_id, kind="registry"),
            jpeg=b"",
        )
        out |= {(t.phase.value, t.frame.seq) for t in tracker.observe(frame, received_at=0)}
    return out


def test_killed_worker_loses_no_message_and_replays_identical_ids(
    kafka_settings: KafkaSettings,
    topics: Topics,
    s3: Minio,
    settings: CommonSettings,
    start_service: StartService,
) -> None:
    [model_id] = registry_models(s3, settings.s3.models_bucket)
    expected = expected_starts_and_ends(model_id)
    assert len(expected) > 8
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    producer = make_producer(kafka_settings)
    for seq in range(FRAMES):
        send_frame(producer, topics.frames, camera_id=camera, seq=seq, payload=scene_jpeg(seq))
    producer.flush()
    producer.close()
    env = {
        "VIGIL_INFERENCE_GROUP_ID": f"inference-{camera}",
        "VIGIL_INFERENCE_MODEL_ID": model_id,
        "VIGIL_INFERENCE_THRESHOLD": "0",  # every frame is hot: the lifecycle is known ahead
        "VIGIL_INFERENCE_EVENT_MAX_DURATION_S": str(LIFECYCLE.max_duration_s),
        "VIGIL_INFERENCE_EVENT_UPDATE_INTERVAL_S": str(LIFECYCLE.update_interval_s),
        "VIGIL_INFERENCE_BATCH_SIZE": "2",  # slow enough to be killed well before the end
        "VIGIL_INFERENCE_THREADS": "1",
    }

    def messages() -> list[EventMessage]:
        records = read_topic(kafka_settings, topics.events, count=10_000, timeout_s=3)
        return [EventMessage.model_validate_json(r.value) for r in records]

    first = start_service("vigil_inference", **env)
    wait_until(
        lambda: len(read_topic(kafka_settings, topics.events, count=3, timeout_s=0.5)) >= 3,
        timeout_s=180,
        what="the first worker's messages",
    )

    def frozen_mid_event() -> bool:
        """The first worker stopped (SIGSTOP: it publishes and commits nothing more) while an
        event is open as far as the topic shows: the committed offset is then at or before the
        event's first frame, so a restart must replay its messages. Stopped between an end and
        the next start, it may have committed all it published: let it run on and try again."""
        first.process.send_signal(signal.SIGSTOP)
        ours = [m for m in messages() if m.camera_id == camera]
        if ours and ours[-1].phase.value != "end":
            return True
        first.process.send_signal(signal.SIGCONT)
        return False

    wait_until(frozen_mid_event, timeout_s=120, what="the first worker stopped mid-event")
    first.kill()
    seen = {(m.phase.value, m.frame_seq) for m in messages()}
    assert not expected <= seen, "the worker finished before it was killed; the test proves nothing"

    second = start_service("vigil_inference", **env)

    def complete() -> list[EventMessage] | None:
        second.assert_running()
        got = messages()
        return got if expected <= {(m.phase.value, m.frame_seq) for m in got} else None

    final = wait_until(complete, timeout_s=300, what="every start and end message")
    assert second.stop() == 0
    lifecycle = {(m.phase.value, m.frame_seq) for m in final if m.phase.value != "update"}
    assert lifecycle == expected, "no message may be missing or invented"
    by_key: dict[tuple[str, int], set[uuid.UUID]] = defaultdict(set)
    by_id: dict[uuid.UUID, list[EventMessage]] = defaultdict(list)
    for message in final:
        by_key[(message.phase.value, message.frame_seq)].add(message.message_id)
        by_id[message.message_id].append(message)
    assert all(len(ids) == 1 for ids in by_key.values()), "a replayed message changed its id"
    for copies in by_id.values():
        fields = {c.model_dump_json(exclude={"detected_at", "score", "peak_score"}) for c in copies}
        assert len(fields) == 1, "duplicates must be the same message"
        assert max(c.peak_score for c in copies) - min(c.peak_score for c in copies) < 1e-4
    assert any(len(copies) > 1 for copies in by_id.values()), "nothing was replayed"
