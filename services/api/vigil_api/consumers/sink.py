"""The event sink: ``vigil.events.v2`` into PostgreSQL, one ``events`` row per event id.

Lifecycle messages (start, update, end) are merged into the event's row by an upsert whose every
rule is order-free and idempotent: the peak is the highest score (ties: the earlier frame), the
earliest detection and start are kept, ``ended`` never goes back to ``open``. So any order and
any number of deliveries of the same messages give the same row; a column without a rule here
keeps what the event's first stored message said (``vigil_shared.db.event_rows`` maps message
fields to columns). Each polled batch is one transaction; offsets are committed after it. Invalid
records go to the dead-letter topic; fields this version does not know (a newer producer's
additive ones) are ignored. Messages of a deleted event (``deleted_events``) are dropped.
"""

from __future__ import annotations

import threading
import uuid

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from pydantic import ValidationError
from sqlalchemy import Boolean, case, func, literal_column, or_
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.orm import Session, sessionmaker

from vigil_api.domain.deletion import deleted_event_ids
from vigil_shared.db.event_rows import Row, event_row
from vigil_shared.db.models import Event
from vigil_shared.kafka import BrokerOutage, dead_letter
from vigil_shared.metrics import ConsumerMetrics
from vigil_shared.schemas.events import EventMessage


def _later_peak(old: Row, new: Row) -> bool:
    return bool((new["score"], -new["frame_seq"]) > (old["score"], -old["frame_seq"]))


def merge_rows(old: Row, new: Row) -> Row:
    """The same rules as the upsert, for messages of one event within one batch."""
    peak = new if _later_peak(old, new) else old
    ended = [r["ended_at"] for r in (old, new) if r["ended_at"] is not None]
    return {
        **old,
        **{k: peak[k] for k in _PEAK_COLUMNS},
        "detected_at": min(old["detected_at"], new["detected_at"]),
        "started_at": min(old["started_at"], new["started_at"]),
        "ended_at": max(ended) if ended else None,
        "status": "ended" if "ended" in (old["status"], new["status"]) else "open",
        "snapshot_key": new["snapshot_key"] or old["snapshot_key"],
    }


def store_messages(sessions: sessionmaker[Session], messages: list[EventMessage]) -> int:
    """Upsert the messages' events in one transaction; returns how many events were new."""
    rows: dict[uuid.UUID, Row] = {}
    for message in messages:
        row = event_row(message)
        old = rows.get(message.event_id)
        rows[message.event_id] = row if old is None else merge_rows(old, row)
    if not rows:
        return 0
    with sessions.begin() as session:
        # A deleted event stays deleted: a late update or a replayed message is dropped.
        for event_id in deleted_event_ids(session, list(rows)):
            del rows[event_id]
        if not rows:
            return 0
        inserted = session.scalars(_upsert(list(rows.values())).returning(_INSERTED)).all()
        return sum(1 for new_row in inserted if new_row)


def _upsert(rows: list[Row]) -> Insert:
    statement = insert(Event).values(rows)
    new = statement.excluded
    peak = or_(
        new.score > Event.score, (new.score == Event.score) & (new.frame_seq < Event.frame_seq)
    )
    return statement.on_conflict_do_update(
        index_elements=[Event.event_id],
        set_={
            **{c: case((peak, getattr(new, c)), else_=getattr(Event, c)) for c in _PEAK_COLUMNS},
            "detected_at": func.least(Event.detected_at, new.detected_at),
            "started_at": func.least(Event.started_at, new.started_at),
            "ended_at": func.greatest(Event.ended_at, new.ended_at),
            "status": case(
                (or_(Event.status == "ended", new.status == "ended"), "ended"), else_="open"
            ),
            "snapshot_key": func.coalesce(new.snapshot_key, Event.snapshot_key),
            "updated_at": func.now(),
        },
    )


_PEAK_COLUMNS = ("frame_seq", "captured_at", "score", "label")
"""The columns about the peak frame: they follow the highest score."""
_INSERTED = literal_column("(xmax = 0)", Boolean)
"""True for a row the upsert inserted, false for one it updated (PostgreSQL)."""


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
        metrics: ConsumerMetrics | None = None,
    ) -> None:
        self._consumer = consumer
        self.metrics = metrics or ConsumerMetrics("event-sink")
        self._producer = producer
        self._sessions = sessions
        self._dead_letter_topic = dead_letter_topic
        self._poll_timeout_ms = poll_timeout_ms
        self._max_records = max_records
        self.stored = 0
        self.records_read = 0

    def run(self, stop: threading.Event) -> None:
        outage = BrokerOutage("event-sink")
        try:
            while not stop.is_set():
                try:
                    outage.recover(self._consumer)
                    self.step()
                except KafkaError as exc:  # stored rows stay; the rest is read again
                    outage.failed(exc, stop)
        finally:
            self._consumer.close()
            self._producer.close(timeout=10)

    def step(self) -> None:
        """One poll: store it, then commit it (a replay after a failure stores nothing twice)."""
        batch = self._consumer.poll(timeout_ms=self._poll_timeout_ms, max_records=self._max_records)
        records = [r for part in batch.values() for r in part]
        if records:
            self.process(records)
            self._consumer.commit()
        self.metrics.measure_lag(self._consumer)

    def process(self, records: list[ConsumerRecord]) -> None:
        messages: list[EventMessage] = []
        self.records_read += len(records)
        self.metrics.records.inc(len(records))
        for record in records:
            try:
                messages.append(EventMessage.read_json(record.value or b""))
            except ValidationError as exc:
                reason = f"not a valid vigil.event.v2: {exc}"
                dead_letter(self._producer, self._dead_letter_topic, record, reason)
                self.metrics.dead_letters.inc()
        self.stored += store_messages(self._sessions, messages)
        self._producer.flush()
