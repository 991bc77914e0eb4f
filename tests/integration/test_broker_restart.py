"""Services ride out a Kafka broker that crashes and comes back: the event sink keeps running,
loses nothing delivered before or after the crash, and a replay still gives one row per event;
ingest keeps its camera running and publishes again once the broker is back; inference keeps
its worker and scores the frames sent after the restart.

The broker is the test's own (``PrivateKafka``), so killing it leaves the shared one alone.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import (
    event_lifecycle,
    registry_models,
    scene_jpeg,
    send_events,
    send_frame,
)
from tests.integration.conftest import StartService
from tests.integration.private_kafka import PrivateKafka
from tests.integration.rtsp import make_clip
from tests.support import read_topic, stored_events, wait_until
from vigil_shared.kafka import ensure_topics, make_producer
from vigil_shared.schemas.events import EventMessage
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.settings import CommonSettings, KafkaSettings

pytestmark = pytest.mark.slow


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateKafka]:
    kafka = PrivateKafka(tmp_path / "kafka")
    kafka.start()
    yield kafka
    kafka.kill()


@pytest.fixture
def on_broker(broker: PrivateKafka, monkeypatch: pytest.MonkeyPatch) -> tuple[str, KafkaSettings]:
    """This test's topic namespace on the private broker, its topics created; the settings
    point there (the services started get the same two variables)."""
    namespace = f"r{uuid.uuid4().hex[:8]}."
    monkeypatch.setenv("VIGIL_KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
    monkeypatch.setenv("VIGIL_KAFKA_TOPIC_NAMESPACE", namespace)
    kafka = KafkaSettings()
    ensure_topics(kafka, kafka.topics.all(), compacted=kafka.topics.compacted())
    return namespace, kafka


def ended(sessions: sessionmaker[Session], camera_id: str) -> bool:
    found = stored_events(sessions, camera_id)
    return len(found) == 1 and found[0][1] == "ended"


def test_the_sink_survives_a_broker_crash_and_loses_nothing(
    broker: PrivateKafka,
    on_broker: tuple[str, KafkaSettings],
    sessions: sessionmaker[Session],
    start_service: StartService,
) -> None:
    namespace, kafka = on_broker
    topics = kafka.topics
    sink = start_service(
        "vigil_api.consumers.sink_main",
        VIGIL_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
        VIGIL_KAFKA_TOPIC_NAMESPACE=namespace,
        VIGIL_API_SINK_GROUP_ID=f"sink-{namespace}",
    )
    before, after = f"cam-{uuid.uuid4().hex[:6]}", f"cam-{uuid.uuid4().hex[:6]}"
    send_events(kafka, topics.events, event_lifecycle(before, 0))
    wait_until(lambda: ended(sessions, before), timeout_s=90, what="the first event stored")

    broker.kill()  # a crash: no clean shutdown, the sink's connections just drop
    time.sleep(5)  # the sink polls a dead broker for a while
    assert sink.process.poll() is None, f"the sink died with the broker:\n{sink.log()[-2000:]}"
    broker.start()

    # New events after the restart, and the old ones again (a producer that retried).
    send_events(kafka, topics.events, event_lifecycle(after, 100) + event_lifecycle(before, 0))
    wait_until(lambda: ended(sessions, after), timeout_s=120, what="the event sent after restart")
    assert ended(sessions, before), "the replayed event must still be one row"
    assert sink.process.poll() is None, f"the sink stopped:\n{sink.log()[-2000:]}"
    assert sink.stop() == 0


def test_ingest_publishes_again_after_a_broker_crash(
    broker: PrivateKafka,
    on_broker: tuple[str, KafkaSettings],
    tmp_path: Path,
    start_service: StartService,
) -> None:
    namespace, kafka = on_broker
    clip = make_clip(tmp_path)
    ingest = start_service(
        "vigil_ingest",
        VIGIL_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
        VIGIL_KAFKA_TOPIC_NAMESPACE=namespace,
        VIGIL_INGEST_CAMERA_ID="restart-cam",
        VIGIL_INGEST_SOURCE=str(clip.path),
        VIGIL_INGEST_FPS="5",
        VIGIL_INGEST_LOOP="true",
    )
    wait_until(
        lambda: read_topic(kafka, kafka.topics.frames, count=5, timeout_s=5),
        timeout_s=90,
        what="frames before the crash",
    )
    broker.kill()
    time.sleep(5)  # ingest keeps sampling; frames it cannot send wait in its bounded buffer
    assert ingest.process.poll() is None, f"ingest died with the broker:\n{ingest.log()[-2000:]}"
    restarted = datetime.now(UTC)
    broker.start()

    def frames_after_restart() -> bool:
        records = read_topic(kafka, kafka.topics.frames, count=10_000, timeout_s=3)
        times = [FrameHeaders.from_kafka_headers(r.headers).captured_at for r in records]
        return sum(t > restarted for t in times) >= 5

    wait_until(frames_after_restart, timeout_s=120, what="frames captured after the restart")
    assert ingest.process.poll() is None, f"ingest stopped:\n{ingest.log()[-2000:]}"
    assert ingest.stop() == 0


def test_inference_scores_again_after_a_broker_crash(
    broker: PrivateKafka,
    on_broker: tuple[str, KafkaSettings],
    s3: Minio,
    settings: CommonSettings,
    start_service: StartService,
) -> None:
    namespace, kafka = on_broker
    topics = kafka.topics
    [model_id] = registry_models(s3, settings.s3.models_bucket)
    camera = f"cam-{uuid.uuid4().hex[:8]}"

    def publish(seqs: range) -> None:
        producer = make_producer(kafka)
        for seq in seqs:
            send_frame(producer, topics.frames, camera_id=camera, seq=seq, payload=scene_jpeg(seq))
        producer.flush()
        producer.close()

    def last_scored_seq() -> int:
        records = read_topic(kafka, topics.events, count=10_000, timeout_s=3)
        seqs = [EventMessage.model_validate_json(r.value).frame_seq for r in records]
        return max(seqs, default=-1)

    publish(range(0, 30))
    worker = start_service(
        "vigil_inference",
        VIGIL_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
        VIGIL_KAFKA_TOPIC_NAMESPACE=namespace,
        VIGIL_INFERENCE_GROUP_ID=f"inference-{camera}",
        VIGIL_INFERENCE_MODEL_ID=model_id,
        VIGIL_INFERENCE_THRESHOLD="0",  # every frame is hot
        VIGIL_INFERENCE_EVENT_MAX_DURATION_S="0.5",
        VIGIL_INFERENCE_THREADS="1",
    )
    wait_until(lambda: last_scored_seq() >= 20, timeout_s=120, what="events before the crash")

    broker.kill()
    time.sleep(5)
    assert worker.process.poll() is None, f"inference died with the broker:\n{worker.log()[-2000:]}"
    broker.start()

    publish(range(30, 60))
    wait_until(lambda: last_scored_seq() >= 50, timeout_s=120, what="events after the restart")
    assert worker.process.poll() is None, f"inference stopped:\n{worker.log()[-2000:]}"
    assert worker.stop() == 0
