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

On a CPU a batch's cameras are scored by several threads at once (``scoring_threads``), each
running torch single-threaded: independent passes keep every core busy where one OpenMP pass
over a small batch spends much of its time in barriers (and collapses on a shared host). A
camera's frames stay together, in order, in one thread, so per-camera state (warm-up banks,
motion, smoothing) is only ever touched by one thread at a time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from vigil_inference.events import EventTracker, Observation, Transition
from vigil_inference.metrics import InferenceMetrics
from vigil_inference.models import ScoringModel
from vigil_inference.routing import AssignmentFollower, ModelRouter, Route
from vigil_inference.snapshots import SnapshotStore
from vigil_shared.kafka import BrokerOutage, dead_letter
from vigil_shared.schemas.frames import FrameHeaders, MalformedFrameError, utc_now
from vigil_shared.topics import Topics
from vigil_shared.vision.preprocess import UndecodableImageError, decode_many
from vigil_shared.vision.scoring import FrameScore

LAG_EVERY_S = 5.0
log = logging.getLogger("vigil_inference")


@dataclass(frozen=True)
class Batching:
    max_frames: int
    max_wait_s: float
    poll_timeout_ms: int


@dataclass(frozen=True)
class Frame:
    record: ConsumerRecord
    headers: FrameHeaders
    image: torch.Tensor

    @property
    def key(self) -> tuple[int, int]:
        return self.record.partition, self.record.offset

    @property
    def partition(self) -> TopicPartition:
        return TopicPartition(self.record.topic, self.record.partition)


Scores = dict[tuple[int, int], tuple[ScoringModel, FrameScore]]
"""Production scores of a batch by (partition, offset)."""

Parsed = tuple[ConsumerRecord, FrameHeaders]
"""A record whose frame headers were read (not yet decoded)."""

Groups = dict[str, tuple[ScoringModel, list[Frame]]]
"""A batch's frames by the id of the model that scores them."""

INFLIGHT_POLL_MS = 5
"""Poll slice while a batch is being scored: the scorer is handed the next batch this soon."""


@dataclass(frozen=True)
class InFlight:
    """A batch being decoded and scored: its records (for positions) and the future frames
    (those that decoded) with their scores."""

    records: list[ConsumerRecord]
    scored: Future[tuple[list[Frame], Scores]]
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
        device: str,
        metrics: InferenceMetrics,
        scoring_threads: int = 1,
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
        self._device = device
        self._clock = clock
        self.metrics = metrics
        self.frames_scored = 0
        self.events_emitted = 0
        self.dead_lettered = 0
        self._lag_due = 0.0
        self._positions: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._camera_partition: dict[str, TopicPartition] = {}
        self._scoring_threads = scoring_threads
        self._pool = (
            ThreadPoolExecutor(scoring_threads, thread_name_prefix="vigil-score")
            if scoring_threads > 1
            else None
        )
        self._reject_lock = threading.Lock()
        self._scorer = ThreadPoolExecutor(1, thread_name_prefix="vigil-batch")
        self._inflight: InFlight | None = None

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
            self._scorer.shutdown()
            self._producer.flush(timeout=10)
            self._consumer.close()
            self._producer.close(timeout=10)
            if self._assignments is not None:
                self._assignments.close()
            if self._snapshots is not None:
                self._snapshots.close()
            if self._pool is not None:
                self._pool.shutdown()

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
            self._producer.flush()  # events and dead letters are durable: commit
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
        parsed = self._parse(records)
        routes = {headers.camera_id: self._router.route(headers.camera_id) for _, headers in parsed}
        scored = self._scorer.submit(self._decode_and_score, parsed, routes)
        self._inflight = InFlight(records, scored, started)

    def _decode_and_score(
        self, parsed: list[Parsed], routes: dict[str, Route]
    ) -> tuple[list[Frame], Scores]:
        """The batch's cameras split over the scoring threads; frames back in batch order."""
        shards = camera_shards(parsed, self._scoring_threads)
        if self._pool is None or len(shards) <= 1:
            done = [self._score_shard(parsed, routes)]
        else:
            futures = [self._pool.submit(self._score_shard, shard, routes) for shard in shards]
            done = [future.result() for future in futures]
        order = {(record.partition, record.offset): i for i, (record, _) in enumerate(parsed)}
        frames = sorted((f for decoded, _ in done for f in decoded), key=lambda f: order[f.key])
        return frames, {key: score for _, scores in done for key, score in scores.items()}

    def _score_shard(
        self, parsed: list[Parsed], routes: dict[str, Route]
    ) -> tuple[list[Frame], Scores]:
        """Decode, then score by model: production, then shadow (compared with production)."""
        frames = self._decode(parsed)
        production: Groups = {}
        shadow: Groups = {}
        for frame in frames:
            route = routes[frame.headers.camera_id]
            production.setdefault(route.production.ref.id, (route.production, []))[1].append(frame)
            if route.shadow is not None:
                shadow.setdefault(route.shadow.ref.id, (route.shadow, []))[1].append(frame)
        out: Scores = {}
        for model, group in production.values():
            for frame, score in zip(group, self._score_group(model, group), strict=True):
                if score is not None:  # None: a warm-up frame, learnt rather than scored
                    out[frame.key] = (model, score)
        for model, group in shadow.values():
            self._record_shadow(model, group, out)
        return frames, out

    def _finish(self) -> list[Transition]:
        """The batch being scored, once it is: lifecycles in frame order, positions advanced.

        Frames of partitions revoked meanwhile are left to their new owner, which replays them.
        """
        batch, self._inflight = self._inflight, None
        if batch is None:
            return []
        frames, scores = batch.scored.result()
        assigned = self._consumer.assignment()
        for record in batch.records:
            tp = TopicPartition(record.topic, record.partition)
            if tp in assigned:
                self._positions[tp] = record.offset + 1
        received = self._clock()
        transitions: list[Transition] = []
        for frame in frames:
            self.frames_scored += 1
            self.metrics.frames.labels(frame.headers.camera_id).inc()
            if frame.partition not in assigned:
                continue
            self._camera_partition[frame.headers.camera_id] = frame.partition
            score = scores.get(frame.key)
            if score is not None:
                observation = self._observation(frame, score)
                transitions += self._tracker.observe(observation, received_at=received)
        if frames:
            self.metrics.batch_size.observe(len(frames))
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
            self._producer.send(
                self._topics.events, key=frame.camera_id.encode(), value=message.to_json_bytes()
            )
            self.events_emitted += 1
            self.metrics.events.labels(frame.camera_id, transition.phase.value).inc()
            self.metrics.latency.observe((detected_at - frame.captured_at).total_seconds())

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

    def _parse(self, records: list[ConsumerRecord]) -> list[Parsed]:
        parsed: list[Parsed] = []
        for record in records:
            try:
                parsed.append((record, FrameHeaders.from_kafka_headers(record.headers)))
            except MalformedFrameError as exc:
                self._reject(record, str(exc))
        return parsed

    def _decode(self, parsed: list[Parsed]) -> list[Frame]:
        decoded = decode_many([r.value or b"" for r, _ in parsed], self._device)
        frames = []
        for (record, headers), image in zip(parsed, decoded, strict=True):
            if isinstance(image, UndecodableImageError):
                self._reject(record, str(image))
            else:
                frames.append(Frame(record, headers, image))
        return frames

    def _score_group(self, model: ScoringModel, group: list[Frame]) -> list[FrameScore | None]:
        try:
            return list(
                model.scorer.score_frames(
                    [f.headers.camera_id for f in group], [f.image for f in group]
                )
            )
        # A frame a model cannot score (odd size, corrupt pixels) must not stall its partition:
        # score one by one to find it and dead-letter only that frame.
        except Exception as exc:
            if len(group) == 1:
                self._reject(group[0].record, f"model {model.ref.id} could not score it: {exc}")
                return [None]
        return [score for frame in group for score in self._score_group(model, [frame])]

    def _record_shadow(
        self,
        model: ScoringModel,
        group: list[Frame],
        production: Scores,
    ) -> None:
        try:
            scores = model.scorer.score_frames(
                [f.headers.camera_id for f in group], [f.image for f in group]
            )
        except Exception as exc:  # a failing candidate never disturbs production scoring
            log.warning("shadow model failed", extra={"model_id": model.ref.id, "reason": str(exc)})
            return
        for frame, score in zip(group, scores, strict=True):
            prod = production.get(frame.key)
            if score is None or prod is None:
                continue
            self.metrics.shadow_scores.labels(model.ref.id).observe(
                score.score / max(score.threshold, 1e-9)
            )
            self.metrics.shadow_frames.labels(
                model.ref.id,
                "hot" if score.score >= score.threshold else "quiet",
                "hot" if prod[1].score >= prod[1].threshold else "quiet",
            ).inc()

    def _observation(self, frame: Frame, scored: tuple[ScoringModel, FrameScore]) -> Observation:
        model, score = scored
        return Observation(
            camera_id=frame.headers.camera_id,
            seq=frame.headers.seq,
            captured_at=frame.headers.captured_at,
            offset=frame.record.offset,
            score=score.score,
            threshold=score.threshold,
            model=model.ref,
            jpeg=frame.record.value or b"",
            heatmap=score.heatmap,
            label=score.label,
        )

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

    def _reject(self, record: ConsumerRecord, reason: str) -> None:
        with self._reject_lock:  # scoring threads reject frames too
            dead_letter(self._producer, self._topics.frames_dead_letter, record, reason)
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


def camera_shards(parsed: Sequence[Parsed], shards: int) -> list[list[Parsed]]:
    """At most ``shards`` groups of whole cameras, balanced by frame count, each in batch order."""
    per_camera: dict[str, list[Parsed]] = {}
    for item in parsed:
        per_camera.setdefault(item[1].camera_id, []).append(item)
    bins: list[list[Parsed]] = [[] for _ in range(min(shards, len(per_camera)) or 1)]
    for camera_items in sorted(per_camera.values(), key=len, reverse=True):
        min(bins, key=len).extend(camera_items)
    order = {id(item): index for index, item in enumerate(parsed)}
    return [sorted(b, key=lambda item: order[id(item)]) for b in bins if b]
