"""Inference scores a camera's frames, dead-letters bad ones and commits only what it handled."""

from __future__ import annotations

import threading
import uuid

import pytest
from kafka import TopicPartition

from tests.factories import scene_jpeg, send_frame
from tests.support import read_topic, wait_until
from vigil_inference.service import build_worker
from vigil_inference.settings import InferenceSettings
from vigil_shared.kafka import header, make_consumer, make_producer
from vigil_shared.schemas.events import AnomalyEvent
from vigil_shared.settings import KafkaSettings
from vigil_shared.topics import Topics


def test_bad_frames_go_to_dead_letter_while_the_camera_keeps_being_scored(
    kafka_settings: KafkaSettings, topics: Topics, monkeypatch: pytest.MonkeyPatch
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

    # 9 decodable frames: 3 form the warm-up bank, the 6 after them are scored into events.
    records = read_topic(kafka_settings, topics.events, count=6)
    events = [AnomalyEvent.model_validate_json(r.value) for r in records]
    assert sorted(e.frame_seq for e in events) == [3, 5, 6, 7, 8, 9]
    assert {e.camera_id for e in events} == {camera}
    assert all(r.key == camera.encode() for r in records)

    check = make_consumer(kafka_settings, group_id=group)
    partitions = [
        TopicPartition(topics.frames, p) for p in check.partitions_for_topic(topics.frames) or []
    ]
    ends = check.end_offsets(partitions)
    committed = {tp: check.committed(tp) or 0 for tp in partitions}
    check.close()
    assert committed == ends, "offsets of handled frames were not committed"
