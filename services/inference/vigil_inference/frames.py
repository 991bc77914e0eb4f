"""A frame's shapes along the worker's pipeline: read, then scored, or rejected with a reason.

``Frame`` is a record whose headers were read; the scorer turns the frames of a batch into
``ScoredFrame``s (its ``Observation`` for the event lifecycle, or none) and ``Rejected`` ones,
which the worker dead-letters. Decoded pixels never leave the scorer.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from vigil_inference.models import ScoringModel
from vigil_shared.event_lifecycle import Observation
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.schemas.shadow_scores import ShadowScore
from vigil_shared.vision.scoring import FrameScore


def partition_of(record: ConsumerRecord) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


@dataclass(frozen=True)
class Frame:
    """A frame message whose headers were read (not yet decoded)."""

    record: ConsumerRecord
    headers: FrameHeaders

    @classmethod
    def read(cls, record: ConsumerRecord) -> Frame:
        """Raises ``MalformedFrameError`` when the headers are missing or invalid."""
        return cls(record, FrameHeaders.from_kafka_headers(record.headers))

    @property
    def camera_id(self) -> str:
        return self.headers.camera_id

    @property
    def key(self) -> tuple[int, int]:
        """(partition, offset): unique within a batch of one topic."""
        return self.record.partition, self.record.offset

    @property
    def partition(self) -> TopicPartition:
        return partition_of(self.record)

    @property
    def jpeg(self) -> bytes:
        return self.record.value or b""

    def observation(self, model: ScoringModel, score: FrameScore) -> Observation:
        """What the event lifecycle (and a snapshot) needs of this frame, scored by ``model``."""
        return Observation(
            camera_id=self.headers.camera_id,
            seq=self.headers.seq,
            captured_at=self.headers.captured_at,
            offset=self.record.offset,
            score=score.score,
            threshold=score.threshold,
            model=model.ref,
            jpeg=self.jpeg,
            heatmap=score.heatmap,
            label=score.label,
            debounce=model.debounce,
        )


@dataclass(frozen=True)
class ScoredFrame:
    """A decoded frame after its production model: ``observation`` is None for a warm-up frame
    (learnt rather than scored) and for a frame its model could not score (rejected).
    ``context_frames``: how many previous frames of its camera that model's score depends on."""

    frame: Frame
    observation: Observation | None
    context_frames: int = 0


@dataclass(frozen=True)
class Rejected:
    """A frame for the dead-letter topic, with the reason its consumers will read."""

    record: ConsumerRecord
    reason: str


@dataclass(frozen=True)
class ScoredBatch:
    """What the scorer made of a batch: the frames that decoded, in batch order, those it
    rejected, and the shadow models' scores to record."""

    frames: list[ScoredFrame] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    shadow: list[ShadowScore] = field(default_factory=list)


@dataclass(frozen=True)
class InFlight:
    """A batch being decoded and scored: its records (for positions), its future scores, and
    the ownership epoch of each partition it read (``PartitionChanges.epoch``)."""

    records: list[ConsumerRecord]
    scored: Future[ScoredBatch]
    started: float
    epochs: dict[TopicPartition, int]
