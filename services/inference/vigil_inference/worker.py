"""The scoring loop: collect a micro-batch, score it, follow event lifecycles, then commit.

A two-stage pipeline: while one batch is decoded and scored (on a background thread), the loop
reads the next from Kafka, then publishes and commits the previous one; when the scorer is free
it takes whatever has arrived. An idle worker's batch closes when it holds ``batch_size`` frames
or ``max_wait`` has passed since its first frame, so a busy stream fills the device and a quiet
one still gets answers quickly. Each frame is scored by exactly one production model and, if its
camera has one, by a shadow model whose scores are recorded (``shadow_record.py``). The scorer
only touches the models: lifecycles, publishing and commits stay on the loop's thread, and
model swaps and partition revocations happen there while nothing is being scored.

At least once: snapshots are stored, then event messages produced and flushed, and only then
offsets committed, and never past the oldest frame an open event (or a half-filled debounce
window) depends on, nor past the frames its model's score of that frame depends on. The commit
says per camera where its replay starts to score and where to observe (``replay.py``), so a
crash, a rebalance or a Kafka failure replays frames that rebuild the same events with the same
ids. A frame that cannot be read or scored goes to the dead-letter topic with its reason.

Decoding and scoring (thread pools, camera shards, model groups, shadow models) are the
``BatchScorer``'s (``scoring.py``); it hands back rejected frames, which the loop dead-letters
before it commits past them. A frame's shapes along the way are in ``frames.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata

from vigil_inference.frames import Frame, InFlight, Rejected, ScoredFrame, partition_of
from vigil_inference.metrics import InferenceMetrics
from vigil_inference.replay import ReplayLedger
from vigil_inference.routing import AssignmentFollower, ModelRouter
from vigil_inference.scoring import BatchScorer
from vigil_inference.shadow_record import send_shadow_scores
from vigil_inference.snapshots import SnapshotStore
from vigil_shared.event_lifecycle import EventTracker, Transition
from vigil_shared.kafka import BrokerOutage, PartitionChanges, dead_letter
from vigil_shared.metrics import LAG_EVERY_S, consumer_lag
from vigil_shared.schemas.frames import MalformedFrameError, utc_now
from vigil_shared.topics import Topics


@dataclass(frozen=True)
class Batching:
    max_frames: int
    max_wait_s: float
    poll_timeout_ms: int


INFLIGHT_POLL_MS = 5
"""Poll slice while a batch is being scored: the scorer is handed the next batch this soon."""


class InferenceWorker:
    def __init__(
        self,
        *,
        consumer: KafkaConsumer,
        partitions: PartitionChanges,
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
        self._partitions = partitions
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
        self._committed: dict[TopicPartition, OffsetAndMetadata] = {}
        self._ledger = ReplayLedger(silence_s=tracker.settings.silence_s)
        self._replan: set[TopicPartition] = set()
        self._inflight: InFlight | None = None
        self._sent: list[FutureRecordMetadata] = []

    def run(self, stop: threading.Event) -> None:
        outage = BrokerOutage("inference")
        try:
            while not stop.is_set():
                try:
                    if outage.recover(self._consumer):
                        self._rewound()
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
            self.close()

    def close(self) -> None:
        """Release the clients; nothing more is committed (what was not is read again)."""
        self._discard_inflight()
        self._scorer.close()
        self._producer.flush(timeout=10)
        self._consumer.close(autocommit=False)
        self._producer.close(timeout=10)
        if self._assignments is not None:
            self._assignments.close()
        if self._snapshots is not None:
            self._snapshots.close()

    def step(self, stop: threading.Event) -> None:
        """One turn: collect the next batch while the current one is scored; run the current
        batch's lifecycles; swap models, drop revoked cameras, read the replay plans of assigned
        partitions and expire silent cameras while nothing is scored; hand the next batch to
        the scorer; then publish, flush and commit the current one."""
        records = self.collect(stop)
        finished = self._inflight is not None
        transitions = self._finish()
        transitions += self._follow_assignments()
        records = self._rebalanced(records)
        transitions += self._expire()
        if records:
            self._start(records)
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
        epochs: dict[TopicPartition, int] = {}
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
            records = self._owned(records, epochs)  # a rebalance in that poll
            epochs.update(self._partitions.stamp(polled))
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
        return self._owned(records, epochs)

    def _owned(
        self, records: list[ConsumerRecord], epochs: dict[TopicPartition, int]
    ) -> list[ConsumerRecord]:
        """The records whose partition was not revoked since they were read."""
        stale = self._partitions.changed(epochs)
        for tp in stale:
            del epochs[tp]
        return [r for r in records if partition_of(r) not in stale] if stale else records

    def _start(self, records: list[ConsumerRecord]) -> None:
        """Headers and routes (model loading) on this thread; decoding and scoring on the
        scorer's. Frames a replay no longer needs are not scored."""
        started = time.perf_counter()
        frames = []
        for frame in self._read(records):
            if self._ledger.skips(frame.camera_id, frame.record.offset):
                self.metrics.replayed_frames.labels("skipped").inc()
            else:
                frames.append(frame)
        routes = {frame.camera_id: self._router.route(frame.camera_id) for frame in frames}
        epochs = self._partitions.stamp(map(partition_of, records))
        self._inflight = InFlight(records, self._scorer.submit(frames, routes), started, epochs)

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
        self._sent += send_shadow_scores(self._producer, self._topics.shadow_scores, scored.shadow)
        owned = self._consumer.assignment() - self._partitions.changed(batch.epochs)
        for record in batch.records:
            tp = partition_of(record)
            if tp in owned:
                self._positions[tp] = record.offset + 1
        received = self._clock()
        transitions: list[Transition] = []
        for item in scored.frames:
            self.frames_scored += 1
            self.metrics.frames.labels(item.frame.camera_id).inc()
            if item.frame.partition in owned:
                transitions += self._observe(item, received)
        if scored.frames:
            self.metrics.batch_size.observe(len(scored.frames))
        self.metrics.batch_seconds.observe(time.perf_counter() - batch.started)
        return transitions

    def _observe(self, item: ScoredFrame, received: float) -> list[Transition]:
        """The lifecycle's part of a scored frame, unless a replay only rebuilds its model."""
        frame = item.frame
        seen = self._ledger.scored(
            frame.camera_id,
            frame.partition,
            frame.record.offset,
            context_frames=item.context_frames,
            now=received,
        )
        if not seen.observe:
            self.metrics.replayed_frames.labels("context").inc()
            return []
        if item.observation is None:
            return []
        observation = dataclasses.replace(item.observation, context_from=seen.context_from)
        return self._tracker.observe(observation, received_at=received)

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
        events and their models' state depend on, with each camera's resume point, so a
        restart replays exactly what rebuilds them (``replay.py``)."""
        wanted = self._ledger.commits(self._positions, self._tracker.resume_frame)
        offsets = {tp: o for tp, o in wanted.items() if self._committed.get(tp) != o}
        if offsets:
            self._consumer.commit(offsets)
            self._committed.update(offsets)
        self.metrics.open_events.set(self._tracker.open_events())

    def _follow_assignments(self) -> list[Transition]:
        if self._assignments is None:
            return []
        switched = self._router.apply(self._assignments.poll())
        for camera_id in switched:
            self._ledger.reset(camera_id)  # the router dropped the old model's state
        return [t for camera_id in switched for t in self._tracker.end(camera_id)]

    def _expire(self) -> list[Transition]:
        """End the events of cameras that fell silent; drop the model state of those whose
        model keeps some (their next frame starts afresh, as a replay will start it)."""
        now = self._clock()
        transitions = self._tracker.expire(now=now)
        for camera_id in self._ledger.idle(now=now):
            self._router.reset(camera_id)
            self._ledger.reset(camera_id)
        return transitions

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
        started = time.perf_counter()
        keys = self._snapshots.store_peaks(transitions)
        self.metrics.snapshot_seconds.observe(time.perf_counter() - started)
        return keys

    def _rebalanced(self, records: list[ConsumerRecord]) -> list[ConsumerRecord]:
        """Drop what this worker held of partitions revoked since the last turn, then read each
        assigned partition's replay plan and seek it to its commit: kafka-python keeps the
        position of one revoked and assigned again (a member left), but its lifecycles were
        dropped, so read on from there an open event would restart under another id and never
        end. Its records read this turn are dropped (read again)."""
        revoked, assigned = self._partitions.take()
        self._drop(revoked)
        assigned |= self._replan
        self._replan = set()
        now = self._clock()
        sought = assigned & self._consumer.assignment()
        for tp in sought:
            committed = self._consumer.committed(tp, metadata=True)
            self._ledger.load(tp, committed, now=now)
            if committed is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed.offset)
        return [r for r in records if partition_of(r) not in sought] if sought else records

    def _rewound(self) -> None:
        """After a Kafka failure, as after a restart: every camera's lifecycle and model state
        is rebuilt from the committed offsets and their replay plans."""
        self._discard_inflight()
        self._drop(set(self._positions) | self._ledger.partitions())
        self._replan = set(self._consumer.assignment())

    def _drop(self, partitions: set[TopicPartition]) -> None:
        for camera_id in self._ledger.drop(partitions):
            self._tracker.forget(camera_id)
            self._router.forget(camera_id)
        for tp in partitions:
            self._positions.pop(tp, None)
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
        self.metrics.lag.set(consumer_lag(self._consumer))
