"""A worker killed while events are open comes back within seconds and rebuilds exactly the
events it would have made uninterrupted, with a real one_class model whose scores depend on each
camera's previous frames (optical flow, a persistence window, a smoothing window).

Two cameras share a partition, so its commit is held back for both and the restarted worker
must pick each up where it needs: scoring the frames that rebuild its motion history without
feeding them to the lifecycle again. Then the events' ids, starts, peaks and ends are those of a
single uninterrupted pass over the same frames, and every event ends.
"""

from __future__ import annotations

import time
import uuid

import pytest
from minio import Minio

from tests.factories import T0
from tests.integration.conftest import StartService
from tests.integration.event_reference import EventLog, ExpectedEvent, expected_events
from tests.integration.one_class_scene import Scene, publish_scenes, store_scene_model
from tests.support import ServiceProcess, read_topic, wait_until
from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.schemas.events import EventPhase
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.topics import Topics
from vigil_shared.vision.inferencer import load_frame_model

pytestmark = pytest.mark.slow
STEPS = 200
LIFECYCLE = LifecycleSettings(silence_s=6.0)
KILLS = 2


def test_a_killed_worker_rebuilds_the_same_events_with_a_motion_model(
    kafka_settings: KafkaSettings,
    topics: Topics,
    s3: Minio,
    settings: CommonSettings,
    start_service: StartService,
) -> None:
    model_id = store_scene_model(s3, settings.s3.models_bucket)
    run = uuid.uuid4().hex[:8]
    # The second camera's cyclists come half-way through the first's: events overlap.
    cameras = {f"a-{run}": Scene(0, first=30), f"b-{run}": Scene(1, first=45)}
    publish_scenes(kafka_settings, topics.frames, cameras, steps=STEPS, start=T0)
    env = {
        "VIGIL_INFERENCE_GROUP_ID": f"inference-{run}",
        "VIGIL_KAFKA_GROUP_INSTANCE_ID": f"inference-{run}",  # static: back at once
        "VIGIL_INFERENCE_MODEL_ID": model_id,
        "VIGIL_INFERENCE_EVENT_SILENCE_S": str(LIFECYCLE.silence_s),
        "VIGIL_INFERENCE_BATCH_SIZE": "4",
        "VIGIL_INFERENCE_SCORING_THREADS": "1",
        "VIGIL_INFERENCE_THREADS": "1",
        "VIGIL_INFERENCE_SNAPSHOTS": "false",
        "VIGIL_INFERENCE_WARMUP_IMAGE_SIZE": "64",
    }
    log = EventLog(kafka_settings, topics.events)
    hits = sum(kill_while_open(start_service("vigil_inference", **env), log) for _ in range(KILLS))
    assert hits, "no kill hit an open event: the test proves nothing"
    last = start_service("vigil_inference", **env)
    restarted, count = time.monotonic(), len(log.messages)
    wait_until(lambda: sent(last, log, count), timeout_s=120, what="a message after the restart")
    print(f"{hits}/{KILLS} kills hit an open event; resumed {time.monotonic() - restarted:.1f}s")
    model = load_frame_model(s3, bucket=settings.s3.models_bucket, model_id=model_id, device="cpu")
    frames = read_topic(kafka_settings, topics.frames, count=2 * STEPS)
    expected = expected_events(frames, model=model, model_id=model_id, lifecycle=LIFECYCLE)
    assert len(expected) >= 6, "the scene's cyclists must make events"

    def all_ended() -> bool:
        last.assert_running()
        log.poll()
        ends = {m.event_id for m in log.messages if m.phase is EventPhase.END}
        return set(expected) <= ends

    wait_until(all_ended, timeout_s=300, what="every expected event to end")
    time.sleep(LIFECYCLE.silence_s + 2)  # anything the worker would still invent
    log.poll()
    assert last.stop() == 0
    log.close()
    assert_same_events(log, expected)


def kill_while_open(worker: ServiceProcess, log: EventLog) -> bool:
    """kill -9 the worker once it has sent a message and an event is open; whether one still
    was when it died (its end may have gone out first)."""
    before = len(log.messages)
    wait_until(
        lambda: sent(worker, log, before) and log.open_events(), timeout_s=240, what="an event"
    )
    worker.kill()
    time.sleep(1)
    log.poll()
    return bool(log.open_events())


def sent(worker: ServiceProcess, log: EventLog, before: int) -> bool:
    """Whether messages came after the first ``before`` (the worker must still be running)."""
    worker.assert_running()
    return len(log.poll()) > before


def assert_same_events(log: EventLog, expected: dict[uuid.UUID, ExpectedEvent]) -> None:
    got = log.by_event()
    assert set(got) == set(expected), "a replay invented or lost an event"
    for event_id, messages in got.items():
        want = expected[event_id]
        ends = {(m.ended_at, m.peak_frame_seq) for m in messages if m.phase is EventPhase.END}
        assert ends, f"{event_id} never ended"
        assert ends == {(want.ended_at, want.peak_frame_seq)}, f"{event_id} ended elsewhere"
        assert {m.started_at for m in messages} == {want.started_at}
        opened = {m.frame_seq for m in messages if m.phase is EventPhase.START}
        assert opened == {want.opened_seq}, f"{event_id} opened on another frame"
