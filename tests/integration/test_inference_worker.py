"""Inference scores a camera's frames, dead-letters bad ones and commits only what it handled."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError
from kafka.future import Future
from minio import Minio

from tests.factories import T0, scene_jpeg, send_frame
from tests.support import read_topic, wait_until
from vigil_inference import service
from vigil_inference import worker as worker_module
from vigil_inference.service import build_worker
from vigil_inference.settings import InferenceSettings
from vigil_shared.kafka import header, make_consumer, make_producer
from vigil_shared.schemas.events import EventMessage
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.storage import get_bytes
from vigil_shared.topics import Topics
from vigil_shared.vision.preprocess import decode


def frame_time(seq: int) -> datetime:
    return T0 + timedelta(seconds=seq / 10)


def check_ends(kafka: KafkaSettings, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = make_consumer(kafka, group_id=None)
    try:
        ends: dict[TopicPartition, int] = consumer.end_offsets(partitions)
        return ends
    finally:
        consumer.close()


def test_bad_frames_go_to_dead_letter_while_the_camera_keeps_being_scored(
    kafka_settings: KafkaSettings,
    topics: Topics,
    settings: CommonSettings,
    s3: Minio,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    group = f"inference-{camera}"
    monkeypatch.setenv("VIGIL_INFERENCE_GROUP_ID", group)
    monkeypatch.setenv("VIGIL_INFERENCE_WARMUP_FRAMES", "3")
    monkeypatch.setenv("VIGIL_INFERENCE_THRESHOLD", "0")  # every scored frame becomes an event
    monkeypatch.setenv("VIGIL_INFERENCE_BATCH_SIZE", "4")
    producer = make_producer(kafka_settings)
    for seq in range(10):
        payload = scene_jpeg(seq)
        if seq == 4:
            payload = payload[: len(payload) // 3]  # truncated JPEG
        send_frame(producer, topics.frames, camera_id=camera, seq=seq, payload=payload)
    send_frame(
        producer,
        topics.frames,
        camera_id=camera,
        seq=10,
        payload=scene_jpeg(10),
        headers=[("vigil-camera-id", camera.encode())],
    )  # headers missing
    producer.flush()
    producer.close()

    worker = build_worker(InferenceSettings())
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        wait_until(
            lambda: worker.frames_scored + worker.dead_lettered >= 11,
            timeout_s=120,
            what="inference to handle all 11 frames",
        )
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive(), "inference did not stop after its stop flag was set"

    assert worker.dead_lettered == 2
    dead = read_topic(kafka_settings, topics.frames_dead_letter, count=2)
    reasons = sorted(header(r.headers, "vigil-error") or "" for r in dead)
    assert "invalid frame headers" in reasons[0]
    assert "not a decodable JPEG" in reasons[1] or "JPEG" in reasons[1]

    # 9 decodable frames: 3 form the warm-up bank; the 6 after them (3, 5-9) are all hot, so the
    # event opens at the third of them (3 of 5) and started with the first.
    records = read_topic(kafka_settings, topics.events, count=1)
    [start] = [EventMessage.model_validate_json(r.value) for r in records]
    assert (start.phase, start.frame_seq, start.camera_id) == ("start", 6, camera)
    assert start.started_at == frame_time(3) and start.ended_at is None
    assert start.model.kind == "warmup" and records[0].key == camera.encode()
    assert worker.frames_scored == 9

    # The peak frame is stored raw and overlaid, before the message that names it.
    assert start.snapshot_key == f"events/{camera}/{start.event_id}/overlay.jpg"
    bucket = settings.s3.snapshots_bucket
    for key in (start.snapshot_key, start.snapshot_key.replace("overlay.jpg", "frame.jpg")):
        image = decode(get_bytes(s3, bucket, key))
        assert tuple(image.shape) == (3, 120, 180)

    # The open event depends on frames from seq 3 (offset 3) on: a restart must replay them.
    check = make_consumer(kafka_settings, group_id=group)
    partitions = [
        TopicPartition(topics.frames, p) for p in check.partitions_for_topic(topics.frames) or []
    ]
    committed = {tp.partition: check.committed(tp) for tp in partitions}
    check.close()
    ends = {tp.partition: n for tp, n in check_ends(kafka_settings, partitions).items() if n}
    assert list(ends.values()) == [11]
    [partition] = ends
    assert committed[partition] == 3, "the commit must stop at the open event's first frame"


class FirstEventLost:
    """A producer whose first event message fails, as one does when a broker failover outlasts
    the producer's delivery timeout; everything else goes through."""

    def __init__(self, producer: KafkaProducer, events_topic: str) -> None:
        self._producer, self._events_topic = producer, events_topic
        self.lost = 0

    def send(self, topic: str, **kwargs: Any) -> Any:
        if topic == self._events_topic and not self.lost:
            self.lost += 1
            return Future().failure(KafkaTimeoutError("batch expired: no leader for 30 s"))
        return self._producer.send(topic, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)


def test_an_event_kafka_did_not_take_is_sent_again_before_its_frames_are_committed(
    kafka_settings: KafkaSettings, topics: Topics, monkeypatch: pytest.MonkeyPatch
) -> None:
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("VIGIL_INFERENCE_GROUP_ID", f"inference-{camera}")
    monkeypatch.setenv("VIGIL_INFERENCE_WARMUP_FRAMES", "3")
    monkeypatch.setenv("VIGIL_INFERENCE_THRESHOLD", "0")
    monkeypatch.setenv("VIGIL_INFERENCE_SNAPSHOTS", "false")
    monkeypatch.setenv("VIGIL_INFERENCE_WARMUP_IMAGE_SIZE", "64")
    producer = make_producer(kafka_settings)
    for seq in range(10):
        send_frame(producer, topics.frames, camera_id=camera, seq=seq, payload=scene_jpeg(seq))
    producer.flush()
    producer.close()
    failing: list[FirstEventLost] = []

    def make_failing_producer(settings: KafkaSettings) -> FirstEventLost:
        failing.append(FirstEventLost(make_producer(settings), topics.events))
        return failing[-1]

    monkeypatch.setattr(service, "make_producer", make_failing_producer)
    worker = build_worker(InferenceSettings())
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        wait_until(
            lambda: worker.events_emitted >= 2,
            timeout_s=240,
            what="the start message, sent again",
        )
    finally:
        stop.set()
        thread.join(timeout=60)
    starts = read_topic(kafka_settings, topics.events, count=10, timeout_s=15)
    assert [f.lost for f in failing] == [1], "the failure was not injected"
    [start] = [EventMessage.model_validate_json(r.value) for r in starts]
    # 3 warm-up frames, then every frame hot: the event opens at the third (seq 5).
    assert (start.phase, start.frame_seq) == ("start", 5)
    # The frames were read twice: the turn whose message failed committed nothing.
    assert worker.frames_scored > 10


def test_the_lag_comes_from_the_fetches_without_a_request_of_its_own(
    kafka_settings: KafkaSettings,
    topics: Topics,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ListOffsets request waits behind the consumer's long-polling fetch and stalled the loop
    (frames 0.2-0.5 s late every 5 s): the lag must come from the fetched high watermarks."""
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("VIGIL_INFERENCE_GROUP_ID", f"inference-{camera}")
    monkeypatch.setenv("VIGIL_INFERENCE_WARMUP_FRAMES", "3")
    monkeypatch.setenv("VIGIL_INFERENCE_BATCH_SIZE", "4")
    monkeypatch.setattr(worker_module, "LAG_EVERY_S", 0.0)  # measured at every step
    producer = make_producer(kafka_settings)
    for seq in range(40):
        send_frame(producer, topics.frames, camera_id=camera, seq=seq, payload=scene_jpeg(seq))
    producer.flush()
    producer.close()

    worker = build_worker(InferenceSettings())

    def no_request(*_: Any, **__: Any) -> None:
        raise AssertionError("the lag asked the broker for the partitions' ends")

    monkeypatch.setattr(worker._consumer, "end_offsets", no_request)
    seen: list[float] = []
    gauge_set = worker.metrics.lag.set

    def record(value: float) -> None:
        seen.append(value)
        gauge_set(value)

    monkeypatch.setattr(worker.metrics.lag, "set", record)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: worker.frames_scored >= 40, timeout_s=120, what="40 frames scored")
        wait_until(lambda: bool(seen) and seen[-1] == 0, timeout_s=30, what="the lag to reach 0")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert max(seen) > 0, "a backlog of 40 frames read 4 at a time shows as lag"
    assert max(seen) <= 40
