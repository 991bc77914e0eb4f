"""The event sink keeps one row per event, the same whatever the order and number of deliveries."""

from __future__ import annotations

import json
import random
import threading
import uuid

from sqlalchemy.orm import Session, sessionmaker

from tests.factories import event_lifecycle, send_events
from tests.support import read_topic, stored_events, wait_until
from vigil_api.consumers.sink import EventSink
from vigil_shared.kafka import header, make_consumer, make_producer
from vigil_shared.settings import KafkaSettings
from vigil_shared.topics import Topics


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
        max_records=4,  # several transactions, so one event's messages meet across batches
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


def test_any_order_duplicates_and_replays_give_one_row_per_event(
    kafka_settings: KafkaSettings, topics: Topics, sessions: sessionmaker[Session]
) -> None:
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    first, second = event_lifecycle(camera, 0), event_lifecycle(camera, 100)
    shuffled = [*first, *second, first[0], second[2], first[1]]
    random.Random(7).shuffle(shuffled)
    send_events(kafka_settings, topics.events, shuffled)
    producer = make_producer(kafka_settings)
    producer.send(topics.events, key=camera.encode(), value=b'{"schema": "vigil.event.v2"}')
    producer.flush()
    producer.close()

    sink = run_sink(kafka_settings, topics, sessions, group="sink-a", until_records=10)
    assert sink.stored == 2
    sample, labels = sink.metrics.registry.get_sample_value, {"consumer": "event-sink"}
    assert sample("vigil_consumer_records_total", labels) == sink.records_read
    assert sample("vigil_consumer_dead_letters_total", labels) == 1
    stored = stored_events(sessions, camera)
    assert [r[:5] for r in stored] == [
        (first[0].event_id, "ended", 5, first[1].peak_captured_at, 3.5),
        (second[0].event_id, "ended", 105, second[1].peak_captured_at, 3.5),
    ]
    assert stored[0][5:8] == (
        first[0].started_at,
        first[2].ended_at,
        first[0].detected_at,
    ), "start, end and first detection survive any order"
    assert stored[0][8] == first[0].snapshot_key

    replay = run_sink(kafka_settings, topics, sessions, group="sink-b", until_records=10)
    assert replay.stored == 0
    assert stored_events(sessions, camera) == stored

    dead = read_topic(kafka_settings, topics.events_dead_letter, count=2, timeout_s=15)
    assert len(dead) == 2  # the malformed record, once per sink group that read it
    reason = header(dead[0].headers, "vigil-error") or ""
    assert "not a valid vigil.event.v2" in reason and "event_id" in reason


def test_an_open_event_updates_in_place_and_ends_later(
    kafka_settings: KafkaSettings, topics: Topics, sessions: sessionmaker[Session]
) -> None:
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    start, update, end = event_lifecycle(camera, 0)
    send_events(kafka_settings, topics.events, [start])
    run_sink(kafka_settings, topics, sessions, group="sink-c", until_records=1)
    assert [r[1:5] for r in stored_events(sessions, camera)] == [
        ("open", 1, start.peak_captured_at, 2.0)
    ]
    send_events(kafka_settings, topics.events, [update, end])
    again = run_sink(kafka_settings, topics, sessions, group="sink-c", until_records=2)
    assert again.stored == 0
    assert [r[1:5] for r in stored_events(sessions, camera)] == [
        ("ended", 5, end.peak_captured_at, 3.5)
    ]


def test_a_message_with_a_field_this_sink_does_not_know_is_stored_not_dead_lettered(
    kafka_settings: KafkaSettings, topics: Topics, sessions: sessionmaker[Session]
) -> None:
    """An additive field keeps the topic: a newer inference's message reaches today's sink."""
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    [start, *_] = event_lifecycle(camera, 0)
    newer = start.model_dump(mode="json", by_alias=True)
    newer["added_later"] = "north-fence"
    newer["model"]["version"] = 7
    producer = make_producer(kafka_settings)
    producer.send(topics.events, key=camera.encode(), value=json.dumps(newer).encode())
    producer.flush()
    producer.close()

    sink = run_sink(kafka_settings, topics, sessions, group="sink-d", until_records=1)
    assert sink.stored == 1
    assert [r[:5] for r in stored_events(sessions, camera)] == [
        (start.event_id, "open", 1, start.peak_captured_at, 2.0)
    ]
