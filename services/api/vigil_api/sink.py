"""The event sink: ``vigil.events.v1`` into PostgreSQL, exactly once per event id.

Each polled batch is inserted with ``ON CONFLICT DO NOTHING`` in one transaction, and offsets are
committed only after that transaction: a crash or a broker restart replays the batch, and the
replay inserts nothing new. Records that are not valid events go to the dead-letter topic.
"""

from __future__ import annotations

import threading
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.db.models import Event
from vigil_shared.kafka import dead_letter
from vigil_shared.schemas.events import AnomalyEvent


def event_row(event: AnomalyEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "camera_id": event.camera_id,
        "frame_seq": event.frame_seq,
        "captured_at": event.captured_at,
        "detected_at": event.detected_at,
        "score": event.score,
        "threshold": event.threshold,
        "model_id": event.model.id,
        "model_kind": event.model.kind,
        "started_at": event.captured_at,
        "ended_at": event.captured_at,
        "status": "ended",
    }


def store_events(sessions: sessionmaker[Session], events: list[AnomalyEvent]) -> int:
    """Insert the events not stored yet; returns how many were new."""
    if not events:
        return 0
    statement = insert(Event).values([event_row(e) for e in events])
    statement = statement.on_conflict_do_nothing(index_elements=[Event.event_id])
    with sessions.begin() as session:
        result = session.execute(statement.returning(Event.event_id))
        return len(result.all())


class EventSink:
    def __init__(
        self,
        *,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        sessions: sessionmaker[Session],
        dead_letter_topic: str,
        poll_timeout_ms: int = 500,
        max_records: int = 500,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._sessions = sessions
        self._dead_letter_topic = dead_letter_topic
        self._poll_timeout_ms = poll_timeout_ms
        self._max_records = max_records
        self.stored = 0
        self.records_read = 0

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                batch = self._consumer.poll(
                    timeout_ms=self._poll_timeout_ms, max_records=self._max_records
                )
                records = [r for part in batch.values() for r in part]
                if records:
                    self.process(records)
                    self._consumer.commit()
        finally:
            self._consumer.close()
            self._producer.close(timeout=10)

    def process(self, records: list[ConsumerRecord]) -> None:
        events: list[AnomalyEvent] = []
        self.records_read += len(records)
        for record in records:
            try:
                events.append(AnomalyEvent.model_validate_json(record.value))
            except ValidationError as exc:
                reason = f"not a valid vigil.event.v1: {exc}"
                dead_letter(self._producer, self._dead_letter_topic, record, reason)
        self.stored += store_events(self._sessions, events)
        self._producer.flush()
