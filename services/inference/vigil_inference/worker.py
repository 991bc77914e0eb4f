"""The scoring loop: collect a micro-batch, score it, follow event lifecycles, then commit.

A two-stage pipeline: while one batch is decoded and scored (on a background thread), the loop
reads the next from Kafka, then publishes and commits the previous one; when the scorer is free
it takes whatever has arrived. An idle worker's batch closes when it holds ``batch_size`` frames
or ``max_wait`` has passed since its first frame, so a busy stream fills the device and a quiet
one still gets answers quickly. Each frame is scored by exactly one production model and, if its
camera has one, by a shadow model whose scores are only recorded. The scorer only touches the
models: lifecycles, publishing and commits stay on the loop's thread, and model swaps and
partition revocations happen there while nothing is being scored.

At least once: snapshots are stored, then event messages produced and flushed, and only then
offsets committed, and never past the oldest frame an open event (or a half-filled debounce
window) depends on. A crash replays those frames, which rebuild the same events with the same
ids. A frame that cannot be read or scored goes to the dead-letter topic with its reason.

Decoding and scoring (thread pools, camera shards, model groups, shadow models) are the
``BatchScorer``'s (``scoring.py``); it hands back rejected frames, which the loop dead-letters
before it commits past them. A frame's shapes along the way are in ``frames.py``.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata

from vigil_inference.events import EventTracker, Transition
from vigil_inference.frames import Frame, Rejected, ScoredBatch
from vigil_inference.metrics import InferenceMetrics
from vigil_inference.routing import AssignmentFollower, ModelRouter
from vigil_inference.scoring import BatchScorer
from vigil_inference.snapshots import SnapshotStore
from vigil_shared.kafka import BrokerOutage, dead_letter
from vigil_shared.schemas.frames import MalformedFrameError, utc_now
from vigil_shared.topics import Topics

LAG_EVERY_S = 5.0


@dataclass(frozen=True)
class Batching:
    max_frames: int
    max_wait_s: float
    poll_timeout_ms: int


INFLIGHT_POLL_MS = 5
"""Poll slice while a batch is being scored: the scorer is handed the next batch this soon."""


@dataclass(frozen=True)
class InFlight:
    """A batch being decoded and scored: its records (for positions) and its future scores."""

    records: list[ConsumerRecord]
    scored: Future[ScoredBatch]
    started: float


class InferenceWorker:
    def __init__(
        self,
        *,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        router: ModelRouter,
        assignments: AssignmentFollower | None,
        tracker: EventTracker,
        snapshots: SnapshotStore | None,
        topics: Topics,
        batching: Batching,
        scorer: BatchScorer,
        metrics: InferenceMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._router = router
        self._assignments = assignments
        self._tracker = tracker
        self._snapshots = snapshots
        self._topics = topics
        self._batching = batching
        self._scorer = scorer
        self._clock = clock
        self.metrics = metrics
        self.frames_scored = 0
        self.events_emitted = 0
        self.dead_lettered = 0
        self._lag_due = 0.0
        self._positions: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._camera_partition: dict[str, TopicPartition] = {}
        self._inflight: InFlight | None = None
        self._sent: list[FutureRecordMetadata] = []

    def run(self, stop: threading.Event) -> None:
        outage = BrokerOutage("inference")
        try:
            while not stop.is_set():
                try:
                    if outage.recover(self._consumer):
                        # As after a restart: every camera's lifecycle and model state is
                        # rebuilt from the committed offsets, which never pass the first frame
                        # an open event depends on; replayed events keep their ids.
                        self._discard_inflight()
                        self._drop_revoked(set())
                        self._sent.clear()
                    self.step(stop)
                except KafkaError as exc:
                    outage.failed(exc, stop)
            if self._inflight is not None and not outage.rewind_pending:
                # The batch being scored: its events out and its offsets committed, if Kafka
                # lets us; otherwise it is read again.
                with contextlib.suppress(KafkaError):
                    self.step(stop)
        finally:
            self._discard_inflight()
            self._scorer.close()
            self._producer.flush(timeout=10)
            self._consumer.close()
            self._producer.close(timeout=10)
            if self._assignments is not None:
                self._assignments.close()
            if self._snapshots is not None:
                self._snapshots.close()

    def step(self, stop: threading.Event) -> None:
        """One turn: collect the next batch while the current one is scored; run the current
        batch's lifecycles; swap models and drop revoked cameras while nothing is scored; hand
        the next batch to the scorer; then publish, flush and commit the current one."""
        records = self.collect(stop)
        finished = self._inflight is not None
        transitions = self._finish()
        transitions += self._follow_assignments()
        self._drop_revoked(self._consumer.assignment())
        if records:
            self._start(records)
        transitions += self._tracker.expire(now=self._clock())
        if transitions:
            self.publish(transitions)
        if finished or transitions:
            self._producer.flush()
            self._raise_if_undelivered()  # events and dead letters are durable: commit
            self.commit()
        self._measure_lag()

    def collect(self, stop: threading.Event) -> list[ConsumerRecord]:
        """The next batch: up to ``max_frames``. While a batch is being scored, whatever arrives
        until the scorer is free; otherwise waiting at most ``max_wait_s`` after the first."""
        limits = self._batching
        records: list[ConsumerRecord] = []
        deadline: float | None = None
        inflight = self._inflight
        while len(records) < limits.max_frames and not stop.is_set():
            if inflight is not None:
                if inflight.scored.done():
                    break
                timeout_ms = INFLIGHT_POLL_MS
            elif deadline is None:
                timeout_ms = limits.poll_timeout_ms
            else:
                timeout_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
            polled = self._consumer.poll(
                timeout_ms=timeout_ms, max_records=limits.max_frames - len(records)
            )
            for part in polled.values():
                records.extend(part)
            if inflight is not None:
                continue
            if not records:
                return records
            if deadline is None:
                deadline = time.monotonic() + limits.max_wait_s
            if time.monotonic() >= deadline:
                break
        return records

    def _start(self, records: list[ConsumerRecord]) -> None:
        """Headers and routes (model loading) on this thread; decoding and scoring on the
        scorer's."""
        started = time.perf_counter()
        frames = self._read(records)
        routes = {frame.camera_id: self._router.route(frame.camera_id) for frame in frames}
        self._inflight = InFlight(records, self._scorer.submit(frames, routes), started)

    def _finish(self) -> list[Transition]:
        """The batch being scored, once it is: lifecycles in frame order, positions advanced.

        Frames of partitions revoked meanwhile are left to their new owner, which replays them.
        """
        batch, self._inflight = self._inflight, None
        if batch is None:
            return []
        scored = batch.scored.result()
        for rejected in scored.rejected:
            self._reject(rejected)
        assigned = self._consumer.assignment()
        for record in batch.records:
            tp = TopicPartition(record.topic, record.partition)
            if tp in assigned:
                self._positions[tp] = record.offset + 1
        received = self._clock()
        transitions: list[Transition] = []
        for item in scored.frames:
            frame = item.frame
            self.frames_scored += 1
            self.metrics.frames.labels(frame.camera_id).inc()
            if frame.partition not in assigned:
                continue
            self._camera_partition[frame.camera_id] = frame.partition
            if item.observation is not None:
                transitions += self._tracker.observe(item.observation, received_at=received)
        if scored.frames:
            self.metrics.batch_size.observe(len(scored.frames))
        self.metrics.batch_seconds.observe(time.perf_counter() - batch.started)
        return transitions

    def _discard_inflight(self) -> None:
        """Drop the batch being scored (its offsets stay uncommitted: it is read again)."""
        batch, self._inflight = self._inflight, None
        if batch is not None:
            batch.scored.exception()  # wait: its models must be idle before state is reset

    def publish(self, transitions: Sequence[Transition]) -> None:
        """Store snapshots, then produce the messages that reference them (flushed by ``run``)."""
        keys = self._store_snapshots(transitions)
        detected_at = utc_now()
        for transition in transitions:
            frame = transition.frame
            message = transition.message(
                detected_at=detected_at, snapshot_key=keys.get(transition.event_id)
            )
            sent = self._producer.send(
                self._topics.events, key=frame.camera_id.encode(), value=message.to_json_bytes()
            )
            self._sent.append(sent)
            self.events_emitted += 1
            self.metrics.events.labels(frame.camera_id, transition.phase.value).inc()
            self.metrics.latency.observe((detected_at - frame.captured_at).total_seconds())

    def _raise_if_undelivered(self) -> None:
        """Kafka gave up on a message (a broker failover longer than the producer's delivery
        timeout): fail the turn before its offsets are committed, so that the loop rewinds and
        the frames are scored and their messages sent again, with the same ids."""
        sent, self._sent = self._sent, []
        for future in sent:
            if future.failed():
                error = future.exception
                if isinstance(error, KafkaError):
                    raise error
                raise KafkaError(f"a message was not delivered: {error!r}") from error

    def commit(self) -> None:
        """Commit each partition's position, held back to the oldest frame its cameras' open
        events depend on, so a restart replays exactly what rebuilds them."""
        held: dict[TopicPartition, int] = {}
        for camera_id, tp in self._camera_partition.items():
            oldest = self._tracker.replay_from(camera_id)
            if oldest is not None:
                held[tp] = min(oldest, held.get(tp, oldest))
        offsets = {}
        for tp, position in self._positions.items():
            offset = min(position, held.get(tp, position))
            if self._committed.get(tp) != offset:
                offsets[tp] = OffsetAndMetadata(offset, "", -1)
        if offsets:
            self._consumer.commit(offsets)
            self._committed.update({tp: o.offset for tp, o in offsets.items()})

    def _follow_assignments(self) -> list[Transition]:
        if self._assignments is None:
            return []
        switched = self._router.apply(self._assignments.poll())
        return [t for camera_id in switched for t in self._tracker.end(camera_id)]

    def _read(self, records: list[ConsumerRecord]) -> list[Frame]:
        frames: list[Frame] = []
        for record in records:
            try:
                frames.append(Frame.read(record))
            except MalformedFrameError as exc:
                self._reject(Rejected(record, str(exc)))
        return frames

    def _store_snapshots(self, transitions: Sequence[Transition]) -> dict[uuid.UUID, str]:
        if self._snapshots is None:
            return {}
        # One upload per event per batch, of its latest peak: uploads of one key never race.
        latest = {t.event_id: t.snapshot for t in transitions if t.snapshot is not None}
        started = time.perf_counter()
        pending: dict[uuid.UUID, Future[str]] = {
            event_id: self._snapshots.submit(event_id=event_id, frame=frame)
            for event_id, frame in latest.items()
        }
        keys = {event_id: future.result() for event_id, future in pending.items()}
        self.metrics.snapshot_seconds.observe(time.perf_counter() - started)
        for t in transitions:
            keys.setdefault(
                t.event_id,
                self._snapshots.key_for(camera_id=t.frame.camera_id, event_id=t.event_id),
            )
        return keys

    def _drop_revoked(self, assigned: set[TopicPartition]) -> None:
        """Cameras of partitions this worker lost: another worker replays and owns them now."""
        for camera_id, tp in list(self._camera_partition.items()):
            if tp not in assigned:
                del self._camera_partition[camera_id]
                self._tracker.forget(camera_id)
                self._router.forget(camera_id)
        for tp in list(self._positions):
            if tp not in assigned:
                del self._positions[tp]
                self._committed.pop(tp, None)

    def _reject(self, rejected: Rejected) -> None:
        self._sent.append(
            dead_letter(
                self._producer, self._topics.frames_dead_letter, rejected.record, rejected.reason
            )
        )
        self.dead_lettered += 1
        self.metrics.dead_letters.inc()

    def _measure_lag(self) -> None:
        now = time.monotonic()
        if now < self._lag_due:
            return
        self._lag_due = now + LAG_EVERY_S
        partitions = self._consumer.assignment()
        if not partitions:
            return
        ends = self._consumer.end_offsets(list(partitions))
        lag = sum(max(0, ends[tp] - self._consumer.position(tp)) for tp in partitions)
        self.metrics.lag.set(lag)
