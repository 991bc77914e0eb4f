"""Bounded memory between decoder and Kafka: the buffer, the in-flight bound, drop-oldest."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from tests.support import wait_until
from tests.unit.ingest_fakes import (
    TOPICS,
    FakeProducer,
    camera_settings,
    run_to_end,
    scripted,
)
from vigil_ingest.buffer import FrameBuffer
from vigil_ingest.camera import build_camera
from vigil_ingest.metrics import IngestMetrics


def test_full_buffer_drops_the_oldest_and_never_blocks() -> None:
    buffer: FrameBuffer[int] = FrameBuffer(3)
    dropped = [buffer.put_latest(i) for i in range(5)]
    assert dropped == [None, None, None, 0, 1]
    assert [buffer.get(timeout=0) for _ in range(4)] == [2, 3, 4, None]


def test_waiting_put_gets_room_when_the_reader_takes_a_frame() -> None:
    buffer: FrameBuffer[int] = FrameBuffer(1)
    assert buffer.put_wait(1, timeout=0)
    assert not buffer.put_wait(2, timeout=0.05)
    threading.Timer(0.05, lambda: buffer.get(timeout=0)).start()
    assert buffer.put_wait(2, timeout=2)


def test_closed_buffer_is_drained_before_it_reports_so() -> None:
    buffer: FrameBuffer[int] = FrameBuffer(2)
    buffer.put_latest(1)
    buffer.close()
    assert not buffer.drained
    assert buffer.get(timeout=1) == 1
    assert buffer.get(timeout=1) is None and buffer.drained


def counter(metrics: IngestMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, {"camera_id": "cam-1", **labels}) or 0.0


def test_slow_kafka_drops_the_oldest_frames_of_the_camera_and_counts_them() -> None:
    producer = FakeProducer(slow=True)  # acknowledges nothing until told
    metrics = IngestMetrics()
    hold = threading.Event()
    camera = build_camera(
        camera_settings(buffer_frames=4, max_in_flight=2),
        producer=producer,
        metrics=metrics,
        frames=scripted(20, hold=hold),
    )

    def dropped() -> float:
        return counter(metrics, "vigil_ingest_frames_dropped_total", reason="buffer_full")

    def buffered() -> float:
        return (
            metrics.registry.get_sample_value(
                "vigil_ingest_buffered_frames", {"camera_id": "cam-1"}
            )
            or 0.0
        )

    camera.start()
    try:
        # The decoder reads all 20 frames although Kafka acknowledged none: it never waits.
        wait_until(
            lambda: len(producer.frames(TOPICS.frames)) == 2 and dropped() + buffered() == 18,
            timeout_s=10,
            what="the 20 frames read, 2 in flight (the bound) and the rest buffered or dropped",
        )
        assert buffered() <= 4 and dropped() >= 14
        waiting = int(buffered())
        wait_until(
            lambda: producer.ack_all() == 0 and len(producer.frames(TOPICS.frames)) == 2 + waiting,
            timeout_s=10,
            what="the buffered frames sent once Kafka caught up",
        )
    finally:
        hold.set()
        camera.close(timeout_s=5)
    sent = producer.frames(TOPICS.frames)
    assert [h.seq for h in sent] == list(range(len(sent)))  # no gap: drops happen before seq
    times = [h.captured_at for h in sent]
    assert times == sorted(times)
    last = producer.statuses(TOPICS.camera_status)[-1]
    assert last.last_frame_at == times[-1], "the newest frame is never the one dropped"
    assert counter(metrics, "vigil_ingest_frames_published_total") == len(sent)
    assert (last.state, last.frames_published, last.frames_dropped) == (
        "stopped",
        len(sent),
        20 - len(sent),
    )


def test_file_read_as_fast_as_possible_waits_for_kafka_and_loses_nothing(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.touch()
    producer = FakeProducer(slow=True)
    stop_acking = threading.Event()

    def ack_slowly() -> None:
        while not stop_acking.wait(0.01):
            producer.ack_all()

    acker = threading.Thread(target=ack_slowly)
    acker.start()
    camera = build_camera(
        camera_settings(source=str(clip), realtime=False, buffer_frames=2, max_in_flight=1),
        producer=producer,
        metrics=IngestMetrics(),
        frames=scripted(30),
    )
    finish = run_to_end(camera, timeout_s=20)
    stop_acking.set()
    acker.join()
    assert [h.seq for h in producer.frames(TOPICS.frames)] == list(range(30))
    assert finish.reason == "source ended" and not finish.failed
    last = producer.statuses(TOPICS.camera_status)[-1]
    assert (last.state, last.reason, last.frames_dropped) == ("stopped", "source ended", 0)


def test_max_frames_stops_the_camera() -> None:
    producer = FakeProducer()
    camera = build_camera(
        camera_settings(max_frames=5),
        producer=producer,
        metrics=IngestMetrics(),
        frames=scripted(50),
    )
    finish = run_to_end(camera, timeout_s=10)
    assert len(producer.frames(TOPICS.frames)) == 5
    assert finish.reason == "published max_frames=5"


def test_status_is_reported_periodically_with_fps() -> None:
    interval_s = 0.1
    producer = FakeProducer()
    hold = threading.Event()
    camera = build_camera(
        camera_settings(status_interval_s=interval_s, buffer_frames=16),
        producer=producer,
        metrics=IngestMetrics(),
        frames=scripted(10, hold=hold),
    )
    camera.start()
    try:
        wait_until(
            lambda: len(producer.statuses(TOPICS.camera_status)) >= 4,
            timeout_s=10,
            what="periodic status reports",
        )
    finally:
        hold.set()
        camera.close(timeout_s=5)
    statuses = producer.statuses(TOPICS.camera_status)
    online = [s for s in statuses if s.state == "online"]
    assert online and online[-1].frames_published == 10
    assert any(s.fps > 0 for s in online)
    assert all(s.report_interval_s == interval_s and s.target_fps == 10 for s in statuses)
    assert all(s.reported_at <= datetime.now(UTC) for s in statuses)
