"""The scoring loop: collect a micro-batch, score it, produce events, then commit offsets.

A batch closes when it holds ``batch_size`` frames or ``max_wait`` has passed since its first
frame, so a busy stream fills the device and a quiet one still gets answers quickly. Offsets are
committed only after the producer has flushed the events a batch caused: a crash replays frames
rather than losing events, and replayed events carry the same deterministic ids. A frame that
cannot be read goes to the dead-letter topic with its reason; it never blocks its partition.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import torch
from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from vigil_inference.embedding import BatchEmbedder
from vigil_inference.metrics import InferenceMetrics
from vigil_inference.scorers import ScorerRouter
from vigil_shared.kafka import dead_letter
from vigil_shared.schemas.events import make_event
from vigil_shared.schemas.frames import FrameHeaders, MalformedFrameError, utc_now
from vigil_shared.topics import Topics
from vigil_shared.vision.preprocess import UndecodableImageError, decode_many

LAG_EVERY_S = 5.0


@dataclass(frozen=True)
class Batching:
    max_frames: int
    max_wait_s: float
    poll_timeout_ms: int


class InferenceWorker:
    def __init__(
        self,
        *,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        embedder: BatchEmbedder,
        router: ScorerRouter,
        topics: Topics,
        batching: Batching,
        metrics: InferenceMetrics,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._embedder = embedder
        self._router = router
        self._topics = topics
        self._batching = batching
        self.metrics = metrics
        self.frames_scored = 0
        self.events_emitted = 0
        self.dead_lettered = 0
        self._lag_due = 0.0

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                records = self.collect(stop)
                if records:
                    self.process(records)
                    self._producer.flush()
                    self._consumer.commit()
                self._measure_lag()
        finally:
            self._producer.flush(timeout=10)
            self._consumer.close()
            self._producer.close(timeout=10)

    def collect(self, stop: threading.Event) -> list[ConsumerRecord]:
        """One micro-batch: up to ``max_frames``, waiting at most ``max_wait_s`` after the first."""
        limits = self._batching
        records: list[ConsumerRecord] = []
        deadline: float | None = None
        while len(records) < limits.max_frames and not stop.is_set():
            timeout_ms = limits.poll_timeout_ms
            if deadline is not None:
                timeout_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
            polled = self._consumer.poll(
                timeout_ms=timeout_ms, max_records=limits.max_frames - len(records)
            )
            for part in polled.values():
                records.extend(part)
            if not records:
                return records
            if deadline is None:
                deadline = time.monotonic() + limits.max_wait_s
            if time.monotonic() >= deadline:
                break
        return records

    def process(self, records: list[ConsumerRecord]) -> None:
        started = time.perf_counter()
        frames: list[tuple[ConsumerRecord, FrameHeaders]] = []
        for record in records:
            try:
                frames.append((record, FrameHeaders.from_kafka_headers(record.headers)))
            except MalformedFrameError as exc:
                self._reject(record, str(exc))
        decoded = decode_many([r.value or b"" for r, _ in frames], self._embedder.device)
        good = []
        for (record, headers), image in zip(frames, decoded, strict=True):
            if isinstance(image, UndecodableImageError):
                self._reject(record, str(image))
            else:
                good.append((headers, image))
        if good:
            embeddings = self._embedder([image for _, image in good])
            for (headers, _), embedding in zip(good, embeddings, strict=True):
                self._score(headers, embedding)
            self.metrics.batch_size.observe(len(good))
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    def _score(self, headers: FrameHeaders, embedding: torch.Tensor) -> None:
        self.frames_scored += 1
        self.metrics.frames.labels(headers.camera_id).inc()
        scored = self._router.score(headers.camera_id, embedding)
        if scored is None or scored.score < scored.threshold:
            return
        detected_at = utc_now()
        event = make_event(
            camera_id=headers.camera_id,
            frame_seq=headers.seq,
            captured_at=headers.captured_at,
            detected_at=detected_at,
            score=scored.score,
            threshold=scored.threshold,
            model=scored.model,
        )
        self._producer.send(
            self._topics.events, key=headers.camera_id.encode(), value=event.to_json_bytes()
        )
        self.events_emitted += 1
        self.metrics.events.labels(headers.camera_id).inc()
        self.metrics.latency.observe((detected_at - headers.captured_at).total_seconds())

    def _reject(self, record: ConsumerRecord, reason: str) -> None:
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
