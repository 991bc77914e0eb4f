"""Shadow reports against real Kafka and PostgreSQL: one report per span, whatever is read
again. A reader that lost its commits (a crash before it committed, a new group) reads every
score again and stores no second report; the commit waits at the first frame of a span still
open, so a restart rebuilds that span whole."""

from __future__ import annotations

import uuid
from datetime import timedelta

from kafka import TopicPartition
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import T0, add_model
from tests.support import wait_until
from vigil_api.consumers.shadow_reporter import ShadowReporter
from vigil_api.core.loop_settings import LoopSettings
from vigil_shared.db.loop_models import ShadowReport
from vigil_shared.event_lifecycle import CALIBRATED_OPEN_K, CALIBRATED_OPEN_N, InferenceDebounce
from vigil_shared.kafka import make_consumer, make_producer
from vigil_shared.metrics import ConsumerMetrics
from vigil_shared.schemas.events import ModelRef
from vigil_shared.schemas.shadow_scores import ShadowScore
from vigil_shared.settings import KafkaSettings
from vigil_shared.topics import Topics

SPAN = 10
SETTINGS = LoopSettings(
    shadow_span_frames=SPAN, shadow_settle_s=0, events=InferenceDebounce(open_k=1, open_n=1)
)


def publish(
    kafka: KafkaSettings, topics: Topics, camera: str, frames: int, shadow: str = "candidate"
) -> None:
    """``frames`` scores on partition 0: hot for both models every 5th frame."""
    producer = make_producer(kafka)
    for n in range(frames):
        hot = 2.0 if n % 5 == 0 else 0.0
        score = ShadowScore(
            camera_id=camera,
            frame_seq=n,
            frame_offset=n,
            captured_at=T0 + timedelta(seconds=n / 10),
            shadow=ModelRef(id=shadow, kind="registry"),
            shadow_score=hot,
            shadow_threshold=1.0,
            production=ModelRef(id="prod", kind="registry"),
            production_score=hot,
            production_threshold=1.0,
        )
        producer.send(
            topics.shadow_scores, key=score.kafka_key(), value=score.to_json_bytes(), partition=0
        )
    producer.flush()
    producer.close()


def read_all(
    kafka: KafkaSettings,
    topics: Topics,
    sessions: sessionmaker[Session],
    group: str,
    at: int = 25,
) -> ShadowReporter:
    reporter = ShadowReporter(
        consumer=make_consumer(kafka, topics.shadow_scores, group_id=group),
        sessions=sessions,
        settings=SETTINGS,
        metrics=ConsumerMetrics("loop"),
    )
    tp = TopicPartition(topics.shadow_scores, 0)

    def caught_up() -> bool:
        reporter.step()
        assignment = reporter.consumer.assignment()
        return tp in assignment and reporter.consumer.position(tp) >= at

    wait_until(caught_up, timeout_s=60, what="the reporter to read every score")
    return reporter


def would_be_events(sessions: sessionmaker[Session], shadow: str) -> list[int]:
    with sessions() as session:
        query = select(ShadowReport.would_be_events).where(ShadowReport.shadow_model_id == shadow)
        return sorted(session.scalars(query))


def test_a_shadow_model_calibrated_for_another_debounce_is_judged_on_it(
    kafka_settings: KafkaSettings, topics: Topics, sessions: sessionmaker[Session]
) -> None:
    """The settings open on 1 hot frame of 1: a candidate that recorded no debounce would raise
    an event in each span (its hot frames 5 apart keep it open); one calibrated for 3 of 5
    raises none from them, as inference would open its events."""
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    calibrated = add_model(sessions, metrics={CALIBRATED_OPEN_K: 3.0, CALIBRATED_OPEN_N: 5.0})
    publish(kafka_settings, topics, camera, frames=25, shadow=calibrated)
    reporter = read_all(kafka_settings, topics, sessions, group=f"loop-{camera}")
    reporter.consumer.close()
    assert would_be_events(sessions, calibrated) == [0, 0]
    uncalibrated = add_model(sessions)
    publish(kafka_settings, topics, camera, frames=25, shadow=uncalibrated)
    reporter = read_all(kafka_settings, topics, sessions, group=f"loop-{camera}-2", at=50)
    reporter.consumer.close()
    assert would_be_events(sessions, uncalibrated) == [1, 1]


def reports(sessions: sessionmaker[Session]) -> list[tuple[uuid.UUID, int, int]]:
    with sessions() as session:
        query = select(ShadowReport.id, ShadowReport.first_offset, ShadowReport.frames)
        rows = session.execute(query)
        return sorted(((rid, offset, frames) for rid, offset, frames in rows), key=lambda r: r[1])


def test_each_span_is_reported_once_and_the_commit_waits_for_an_open_span(
    kafka_settings: KafkaSettings, topics: Topics, sessions: sessionmaker[Session]
) -> None:
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    publish(kafka_settings, topics, camera, frames=25)  # two spans and half of a third
    first = read_all(kafka_settings, topics, sessions, group=f"loop-{camera}")
    stored = reports(sessions)
    assert [(offset, frames) for _, offset, frames in stored] == [(0, SPAN), (SPAN, SPAN)]
    tp = TopicPartition(topics.shadow_scores, 0)
    assert first.consumer.committed(tp) == 2 * SPAN  # the open span's first frame
    first.consumer.close()

    # Every score read again, by a reader that never committed: no second report.
    again = read_all(kafka_settings, topics, sessions, group=f"loop-{camera}-fresh")
    assert reports(sessions) == stored
    again.consumer.close()
