"""Ingest against a real RTSP camera (rtsp-server-perl fed by ffmpeg) and the real Kafka.

A camera that is cut and restored, or that is not there at all, must show on the status topic
with a reason an operator can act on, while ingest keeps running and reconnects by itself.
"""

from __future__ import annotations

import io
import itertools
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from PIL import Image

from tests.integration.conftest import StartService
from tests.integration.rtsp import Clip, RtspCamera, free_tcp_port, make_clip
from tests.support import ServiceProcess, wait_until
from vigil_shared.kafka import make_consumer
from vigil_shared.schemas.camera_status import CameraStatus
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.settings import KafkaSettings
from vigil_shared.topics import Topics

T = TypeVar("T")


class TopicTail:
    """Everything read so far from one topic, from its start; waits poll for more.

    Partitions are assigned by hand: a group member that joins right after the topic was created
    may be given no partitions (its metadata does not list the topic yet) and read nothing."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self._consumer = make_consumer(settings, group_id=f"tail-{uuid.uuid4().hex[:8]}")
        partitions = wait_until(
            lambda: self._consumer.partitions_for_topic(topic), timeout_s=10, what=topic
        )
        self._consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        self._consumer.seek_to_beginning()
        self.records: list[ConsumerRecord] = []

    def wait_for(
        self, probe: Callable[[list[ConsumerRecord]], T | None], *, timeout_s: float, what: str
    ) -> T:
        deadline = time.monotonic() + timeout_s
        while (result := probe(self.records)) is None or result is False:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
            for batch in self._consumer.poll(timeout_ms=200).values():
                self.records.extend(batch)
        return result

    def read_for(self, seconds: float) -> list[ConsumerRecord]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for batch in self._consumer.poll(timeout_ms=200).values():
                self.records.extend(batch)
        return self.records

    def close(self) -> None:
        self._consumer.close()


def frames_of(records: list[ConsumerRecord]) -> list[FrameHeaders]:
    return [FrameHeaders.from_kafka_headers(r.headers) for r in records]


def statuses_of(records: list[ConsumerRecord]) -> list[CameraStatus]:
    return [CameraStatus.model_validate_json(r.value) for r in records]


def status_where(
    predicate: Callable[[CameraStatus], bool], *, after: int = 0
) -> Callable[[list[ConsumerRecord]], CameraStatus | None]:
    """A probe for the first status (from index ``after``) that matches."""

    def probe(records: list[ConsumerRecord]) -> CameraStatus | None:
        return next((s for s in statuses_of(records)[after:] if predicate(s)), None)

    return probe


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    return make_clip(tmp_path_factory.mktemp("rtsp"))


@pytest.fixture
def camera(clip: Clip, tmp_path: Path) -> Iterator[RtspCamera]:
    rtsp = RtspCamera(clip, tmp_path)
    rtsp.start_server()
    yield rtsp
    rtsp.close()


@pytest.fixture
def tails(kafka_settings: KafkaSettings, topics: Topics) -> Iterator[tuple[TopicTail, TopicTail]]:
    frames, status = (
        TopicTail(kafka_settings, topics.frames),
        TopicTail(kafka_settings, topics.camera_status),
    )
    yield frames, status
    frames.close()
    status.close()


def start_ingest(
    start_service: StartService, camera_id: str, source: str, **env: str
) -> ServiceProcess:
    """Ingest with timeouts and backoff short enough for a test to see several reconnects."""
    settings = {
        "VIGIL_INGEST_CAMERA_ID": camera_id,
        "VIGIL_INGEST_SOURCE": source,
        "VIGIL_INGEST_FPS": "10",
        "VIGIL_INGEST_OPEN_TIMEOUT_S": "3",
        "VIGIL_INGEST_READ_TIMEOUT_S": "1.5",
        "VIGIL_INGEST_PROBE_S": "0.5",
        "VIGIL_INGEST_RECONNECT_INITIAL_S": "0.2",
        "VIGIL_INGEST_RECONNECT_MAX_S": "1",
        "VIGIL_INGEST_STATUS_INTERVAL_S": "1",
    }
    settings.update(env)
    return start_service("vigil_ingest", **settings)


def assert_in_order(frames: list[FrameHeaders]) -> None:
    assert [f.seq for f in frames] == list(range(len(frames))), "seq must rise by one per frame"
    times = [f.captured_at for f in frames]
    assert all(a < b for a, b in itertools.pairwise(times)), "capture times must increase"


def test_rtsp_frames_arrive_in_order_with_status_and_metrics(
    camera: RtspCamera,
    tails: tuple[TopicTail, TopicTail],
    start_service: StartService,
) -> None:
    frames, status = tails
    camera.start_publisher()
    camera_id = f"rtsp-{uuid.uuid4().hex[:8]}"
    metrics_port = free_tcp_port()
    ingest = start_ingest(
        start_service, camera_id, camera.url, VIGIL_INGEST_METRICS_PORT=str(metrics_port)
    )
    started = datetime.now(UTC)
    records = frames.wait_for(
        lambda rs: rs if len(rs) >= 20 else None,
        timeout_s=30,
        what=f"20 frames of {camera.clip.what}",
    )
    headers = frames_of(records)
    assert_in_order(headers)
    assert {r.key for r in records} == {camera_id.encode()}
    assert {(h.width, h.height) for h in headers} == {camera.clip.size}
    assert Image.open(io.BytesIO(records[0].value)).size == camera.clip.size
    assert started - timedelta(seconds=5) < headers[0].captured_at < datetime.now(UTC)

    online = status.wait_for(
        status_where(lambda s: s.state == "online" and s.frames_published > 0),
        timeout_s=10,
        what="an online status",
    )
    assert (online.camera_id, online.reason, online.target_fps) == (camera_id, None, 10)
    assert online.last_frame_at is not None

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        metrics = reply.read().decode()
    assert f'vigil_ingest_camera_online{{camera_id="{camera_id}"}} 1.0' in metrics
    assert f'vigil_ingest_frames_published_total{{camera_id="{camera_id}"}}' in metrics

    assert ingest.stop() == 0
    final = status.wait_for(
        status_where(lambda s: s.state == "stopped"), timeout_s=10, what="the stopped status"
    )
    assert final.reason == "ingest stopped"


@pytest.mark.slow
def test_stream_cut_and_restored_reconnects_by_itself(
    camera: RtspCamera,
    tails: tuple[TopicTail, TopicTail],
    start_service: StartService,
) -> None:
    frames, status = tails
    camera.start_publisher()
    ingest = start_ingest(start_service, f"cut-{uuid.uuid4().hex[:8]}", camera.url)
    frames.wait_for(lambda rs: len(rs) >= 10, timeout_s=30, what="frames before the cut")

    # 1. The camera stops sending; readers are not told, they just get no more packets.
    camera.stop_publisher()
    cut = status.wait_for(
        status_where(lambda s: s.state == "offline" and s.frames_published > 0),
        timeout_s=15,
        what="offline after the publisher stopped",
    )
    assert cut.reason and camera.url in cut.reason
    published_at_cut, seen = len(frames.records), len(status.records)
    camera.start_publisher()
    back = status.wait_for(
        status_where(lambda s: s.state == "online" and s.reconnects >= 1, after=seen),
        timeout_s=20,
        what="online again after the publisher came back",
    )
    frames.wait_for(
        lambda rs: len(rs) >= published_at_cut + 10, timeout_s=20, what="frames after the cut"
    )

    # 2. The server crashes (its publisher goes with it), then comes back.
    seen = len(status.records)
    camera.kill_server()
    camera.stop_publisher()
    down = status.wait_for(
        status_where(lambda s: s.state == "offline", after=seen),
        timeout_s=15,
        what="offline after the server crashed",
    )
    assert down.reason and camera.url in down.reason
    before_restart = len(frames.records)
    camera.start_server()
    camera.start_publisher()
    status.wait_for(
        status_where(lambda s: s.state == "online" and s.reconnects > back.reconnects, after=seen),
        timeout_s=20,
        what="online again after the server came back",
    )
    frames.wait_for(
        lambda rs: len(rs) >= before_restart + 10, timeout_s=20, what="frames after the restart"
    )
    ingest.assert_running()
    assert_in_order(frames_of(frames.records))  # one sequence across both faults
    assert ingest.stop() == 0


def test_unreachable_camera_is_offline_with_the_reason_and_nothing_crashes(
    tails: tuple[TopicTail, TopicTail], start_service: StartService
) -> None:
    frames, status = tails
    port = free_tcp_port()  # nothing listens there
    url = f"rtsp://viewer:s3cret@127.0.0.1:{port}/cam1"
    ingest = start_ingest(start_service, f"gone-{uuid.uuid4().hex[:8]}", url)
    offline = status.wait_for(
        status_where(lambda s: s.state == "offline" and s.reconnects >= 2),
        timeout_s=20,
        what="offline status after retries",
    )
    assert (
        offline.reason == f"cannot open rtsp://viewer:***@127.0.0.1:{port}/cam1: Connection refused"
    )
    assert offline.last_frame_at is None and offline.frames_published == 0
    ingest.assert_running()
    assert "s3cret" not in ingest.log()

    started = time.monotonic()
    assert ingest.stop() == 0
    assert time.monotonic() - started < 5, "SIGTERM must cut the backoff short"
    assert frames.read_for(1.0) == []
