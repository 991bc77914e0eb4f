"""The scoring loop: poll a batch of frames, score it, produce events, then commit offsets.

Offsets are committed only after the producer has flushed the events a batch caused, so a crash
replays frames rather than losing events; replayed events carry the same deterministic ids.
A frame that cannot be read goes to the dead-letter topic with its reason and is not retried.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch
from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from vigil_inference.scorers import ScorerRouter
from vigil_shared.kafka import dead_letter
from vigil_shared.schemas.events import make_event
from vigil_shared.schemas.frames import FrameHeaders, MalformedFrameError, utc_now
from vigil_shared.schemas.manifests import Preprocessing
from vigil_shared.topics import Topics
from vigil_shared.vision.backbones import FrameEmbedder
from vigil_shared.vision.preprocess import UndecodableImageError, decode, to_batch


@dataclass(frozen=True)
class Frame:
    headers: FrameHeaders
    image: torch.Tensor


class FrameScorer:
    """Embeds frames in batches and routes each embedding to its camera's scorer."""

    def __init__(
        self, embedder: FrameEmbedder, prep: Preprocessing, router: ScorerRouter, device: str
    ) -> None:
        self._embedder = embedder.to(device)
        self._prep = prep
        self._router = router
        self._device = device

    @torch.inference_mode()
    def embed(self, frames: list[Frame]) -> torch.Tensor:
        images = [f.image.to(self._device, non_blocking=True) for f in frames]
        embeddings: torch.Tensor = self._embedder(to_batch(images, self._prep))
        return embeddings.cpu()

    @property
    def router(self) -> ScorerRouter:
        return self._router


class InferenceWorker:
    def __init__(
        self,
        *,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        scorer: FrameScorer,
        topics: Topics,
        batch_size: int,
        poll_timeout_ms: int,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._scorer = scorer
        self._topics = topics
        self._batch_size = batch_size
        self._poll_timeout_ms = poll_timeout_ms
        self.frames_scored = 0
        self.events_emitted = 0
        self.dead_lettered = 0

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                batch = self._consumer.poll(
                    timeout_ms=self._poll_timeout_ms, max_records=self._batch_size
                )
                records = [r for part in batch.values() for r in part]
                if records:
                    self.process(records)
                    self._producer.flush()
                    self._consumer.commit()
        finally:
            self._producer.flush(timeout=10)
            self._consumer.close()
            self._producer.close(timeout=10)

    def process(self, records: list[ConsumerRecord]) -> None:
        frames = [f for f in (self._parse(r) for r in records) if f is not None]
        if not frames:
            return
        embeddings = self._scorer.embed(frames)
        detected_at = utc_now()
        router = self._scorer.router
        for frame, embedding in zip(frames, embeddings, strict=True):
            self.frames_scored += 1
            scored = router.score(frame.headers.camera_id, embedding)
            if scored is None or scored.score < scored.threshold:
                continue
            event = make_event(
                camera_id=frame.headers.camera_id,
                frame_seq=frame.headers.seq,
                captured_at=frame.headers.captured_at,
                detected_at=detected_at,
                score=scored.score,
                threshold=scored.threshold,
                model=scored.model,
            )
            key = frame.headers.camera_id.encode()
            self._producer.send(self._topics.events, key=key, value=event.to_json_bytes())
            self.events_emitted += 1

    def _parse(self, record: ConsumerRecord) -> Frame | None:
        try:
            headers = FrameHeaders.from_kafka_headers(record.headers)
            return Frame(headers=headers, image=decode(record.value))
        except (MalformedFrameError, UndecodableImageError) as exc:
            dead_letter(self._producer, self._topics.frames_dead_letter, record, str(exc))
            self.dead_lettered += 1
            return None
