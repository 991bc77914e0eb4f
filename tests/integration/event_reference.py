"""What an uninterrupted worker makes of a topic's frames, to hold a crashed and restarted one to.

``expected_events`` scores every frame once, in order, with a fresh model, and runs the event
lifecycle over the scores: the events a worker that never stopped would have sent. ``EventLog``
follows the events topic as a test (or the fault drill) reads it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from tests.support import wait_until
from vigil_inference.frames import Frame
from vigil_inference.models import ScoringModel
from vigil_shared.event_lifecycle import EventTracker, LifecycleSettings, Transition
from vigil_shared.kafka import make_consumer
from vigil_shared.schemas.events import EventMessage, EventPhase, ModelRef
from vigil_shared.settings import KafkaSettings
from vigil_shared.vision.preprocess import decode
from vigil_shared.vision.scoring import FrameModel

CHUNK = 64


@dataclass(frozen=True)
class ExpectedEvent:
    camera_id: str
    started_at: datetime
    peak_frame_seq: int
    ended_at: datetime | None
    opened_seq: int
    """The frame whose score opened it (its ``start`` message's): where the debounce filled."""


def expected_events(
    records: Iterable[ConsumerRecord],
    *,
    model: FrameModel,
    model_id: str,
    lifecycle: LifecycleSettings,
) -> dict[uuid.UUID, ExpectedEvent]:
    """The events of ``records`` (frames of one topic) scored in offset order by ``model``,
    each ended where a worker ends it when its camera falls silent."""
    frames = [Frame.read(r) for r in sorted(records, key=lambda r: (r.partition, r.offset))]
    scoring = ScoringModel(ModelRef(id=model_id, kind="registry"), model)
    tracker = EventTracker(lifecycle)
    transitions: list[Transition] = []
    for start in range(0, len(frames), CHUNK):
        chunk = frames[start : start + CHUNK]
        scores = model.score_frames([f.camera_id for f in chunk], [decode(f.jpeg) for f in chunk])
        for frame, score in zip(chunk, scores, strict=True):
            transitions += tracker.observe(frame.observation(scoring, score), received_at=0)
    for camera_id in tracker.cameras():
        transitions += tracker.end(camera_id)
    starts = {t.event_id: t for t in transitions if t.phase is EventPhase.START}
    return {
        t.event_id: ExpectedEvent(
            t.frame.camera_id,
            starts[t.event_id].started_at,
            t.peak.seq,
            t.ended_at,
            opened_seq=starts[t.event_id].frame.seq,
        )
        for t in transitions
        if t.phase is EventPhase.END
    }


class EventLog:
    """Every message of the events topic so far, read from its start outside any group."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self._consumer = make_consumer(kafka, group_id=None)
        partitions = wait_until(
            lambda: self._consumer.partitions_for_topic(topic), timeout_s=30, what=topic
        )
        self._consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        self._consumer.seek_to_beginning()
        self.messages: list[EventMessage] = []

    def poll(self, timeout_ms: int = 100) -> list[EventMessage]:
        for batch in self._consumer.poll(timeout_ms=timeout_ms).values():
            self.messages += [EventMessage.model_validate_json(r.value) for r in batch]
        return self.messages

    def open_events(self) -> set[uuid.UUID]:
        """Started and not (yet) ended."""
        ended = {m.event_id for m in self.messages if m.phase is EventPhase.END}
        return {m.event_id for m in self.messages if m.event_id not in ended}

    def by_event(self) -> dict[uuid.UUID, list[EventMessage]]:
        out: dict[uuid.UUID, list[EventMessage]] = defaultdict(list)
        for message in self.messages:
            out[message.event_id].append(message)
        return dict(out)

    def close(self) -> None:
        self._consumer.close()
