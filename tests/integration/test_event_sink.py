"""The event sink stores each event exactly once, across duplicates and a full replay."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.support import read_topic, wait_until
from vigil_api.sink import EventSink
from vigil_shared.db.models import Event
from vigil_shared.kafka import header, make_consumer, make_producer
from vigil_shared.schemas.events import AnomalyEvent, ModelRef, make_event
from vigil_shared.settings import KafkaSettings
from vigil_shared.topics import Topics


def events_for(camera_id: str, n: int) -> list[AnomalyEvent]:
    start = datetime(2026, 11, 28, 12, tzinfo=UTC)
    return [
        make_event(
            camera_id=camera_id,
            frame_seq=i,
            captured_at=start + timedelta(seconds=i),
            detected_at=start + timedelta(seconds=i, milliseconds=80),
            score=2.0 + i,
            threshold=1.5,
            model=ModelRef(id="m-test", kind="registry"),
        )
        for i in range(n)
    ]


def run_sink(
    kafka: KafkaSettings,
    topics: Topics,
    sessions: sessionmaker[Session],
    *,
    group: str,
    until_records: int,
) -> EventSink:
    sink = EventSink(
        consumer=make_consumer(kafka, topics.events, group_id=group),
        producer=make_producer(kafka),
        sessions=sessions,
        dead_letter_topic=topics.events_dead_letter,
    )
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,))
    thread.start()
    try:
        wait_until(
            lambda: sink.records_read >= until_records,
            timeout_s=60,
            what="the sink to read the topic",
        )
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the sink did not stop after its stop flag was set"
    return sink


def stored(sessions: sessionmaker[Session], camera_id: str) -> int:
    with sessions() as session:
        query = select(func.count()).select_from(Event).where(Event.camera_id == camera_id)
        return session.scalar(query) or 0


def test_duplicates_and_replays_store_each_event_once(
    kafka_settings: KafkaSettings, topics: Topics, sessions: sessionmaker[Session]
) -> None:
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    events = events_for(camera, 5)
    producer = make_producer(kafka_settings)
    for event in [*events, events[0], events[3]]:
        producer.send(topics.events, key=camera.encode(), value=event.to_json_bytes())
    producer.send(topics.events, key=camera.encode(), value=b'{"schema": "vigil.event.v1"}')
    producer.flush()
    producer.close()

    first = run_sink(kafka_settings, topics, sessions, group="sink-a", until_records=8)
    assert first.stored == 5
    assert stored(sessions, camera) == 5

    replay = run_sink(kafka_settings, topics, sessions, group="sink-b", until_records=8)
    assert replay.stored == 0
    assert stored(sessions, camera) == 5

    dead = read_topic(kafka_settings, topics.events_dead_letter, count=2, timeout_s=15)
    assert len(dead) == 2  # the malformed record, once per sink group that read it
    reason = header(dead[0].headers, "vigil-error") or ""
    assert "not a valid vigil.event.v1" in reason and "event_id" in reason


def test_committed_offsets_mean_a_restarted_sink_skips_stored_events(
    kafka_settings: KafkaSettings, topics: Topics, sessions: sessionmaker[Session]
) -> None:
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    producer = make_producer(kafka_settings)
    for event in events_for(camera, 3):
        producer.send(topics.events, key=camera.encode(), value=event.to_json_bytes())
    producer.flush()
    run_sink(kafka_settings, topics, sessions, group="sink-c", until_records=3)
    for event in events_for(camera, 4)[3:]:
        producer.send(topics.events, key=camera.encode(), value=event.to_json_bytes())
    producer.flush()
    producer.close()
    again = run_sink(kafka_settings, topics, sessions, group="sink-c", until_records=1)
    assert again.stored == 1
    assert stored(sessions, camera) == 4
