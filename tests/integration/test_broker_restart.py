"""Services ride out a Kafka broker that crashes and comes back: the event sink keeps running,
loses nothing delivered before or after the crash, and a replay still gives one row per event;
ingest keeps its camera running and publishes again once the broker is back.

The broker is the test's own (``PrivateKafka``), so killing it leaves the shared one alone.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.conftest import StartService
from tests.integration.private_kafka import PrivateKafka
from tests.integration.rtsp import make_clip
from tests.integration.test_event_sink import lifecycle, rows, send
from tests.support import read_topic, wait_until
from vigil_shared.kafka import ensure_topics
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.settings import KafkaSettings

pytestmark = pytest.mark.slow


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateKafka]:
    kafka = PrivateKafka(tmp_path / "kafka")
    kafka.start()
    yield kafka
    kafka.kill()


def ended(sessions: sessionmaker[Session], camera_id: str) -> bool:
    found = rows(sessions, camera_id)
    return len(found) == 1 and found[0][1] == "ended"


def test_the_sink_survives_a_broker_crash_and_loses_nothing(
    broker: PrivateKafka,
    monkeypatch: pytest.MonkeyPatch,
    sessions: sessionmaker[Session],
    start_service: StartService,
) -> None:
    namespace = f"r{uuid.uuid4().hex[:8]}."
    monkeypatch.setenv("VIGIL_KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
    monkeypatch.setenv("VIGIL_KAFKA_TOPIC_NAMESPACE", namespace)
    kafka = KafkaSettings()
    topics = kafka.topics
    ensure_topics(kafka, topics.all(), compacted=topics.compacted())
    sink = start_service(
        "vigil_api.sink_main",
        VIGIL_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
        VIGIL_KAFKA_TOPIC_NAMESPACE=namespace,
        VIGIL_API_SINK_GROUP_ID=f"sink-{namespace}",
    )
    before, after = f"cam-{uuid.uuid4().hex[:6]}", f"cam-{uuid.uuid4().hex[:6]}"
    send(kafka, topics.events, lifecycle(before, 0))
    wait_until(lambda: ended(sessions, before), timeout_s=90, what="the first event stored")

    broker.kill()  # a crash: no clean shutdown, the sink's connections just drop
    time.sleep(5)  # the sink polls a dead broker for a while
    assert sink.process.poll() is None, f"the sink died with the broker:\n{sink.log()[-2000:]}"
    broker.start()

    # New events after the restart, and the old ones again (a producer that retried).
    send(kafka, topics.events, lifecycle(after, 100) + lifecycle(before, 0))
    wait_until(lambda: ended(sessions, after), timeout_s=120, what="the event sent after restart")
    assert ended(sessions, before), "the replayed event must still be one row"
    assert sink.process.poll() is None, f"the sink stopped:\n{sink.log()[-2000:]}"
    assert sink.stop() == 0


def test_ingest_publishes_again_after_a_broker_crash(
    broker: PrivateKafka,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    start_service: StartService,
) -> None:
    namespace = f"r{uuid.uuid4().hex[:8]}."
    monkeypatch.setenv("VIGIL_KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
    monkeypatch.setenv("VIGIL_KAFKA_TOPIC_NAMESPACE", namespace)
    kafka = KafkaSettings()
    ensure_topics(kafka, kafka.topics.all(), compacted=kafka.topics.compacted())
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
