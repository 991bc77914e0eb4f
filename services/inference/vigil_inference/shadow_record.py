"""Shadow scores on the record: each frame a shadow model scored, with production's score of it,
on ``vigil.shadow-scores.v1`` for the loop process's shadow reports (docs/live-loop.md).

The scorer builds the messages (it holds both scores); the worker's loop sends them with the
batch's events, so they are flushed and checked before the batch's offsets are committed, and a
replayed frame sends the same message again (consumers keep one per frame offset).
"""

from __future__ import annotations

from collections.abc import Sequence

from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from vigil_inference.frames import Frame
from vigil_inference.models import ScoringModel
from vigil_shared.event_lifecycle import Observation
from vigil_shared.schemas.shadow_scores import ShadowScore
from vigil_shared.vision.scoring import FrameScore


def shadow_score(
    frame: Frame, model: ScoringModel, score: FrameScore, production: Observation
) -> ShadowScore:
    """The record of ``frame`` scored ``score`` by the shadow ``model``."""
    return ShadowScore(
        camera_id=frame.camera_id,
        frame_seq=frame.headers.seq,
        frame_offset=frame.record.offset,
        captured_at=frame.headers.captured_at,
        shadow=model.ref,
        shadow_score=score.score,
        shadow_threshold=score.threshold,
        production=production.model,
        production_score=production.score,
        production_threshold=production.threshold,
    )


def send_shadow_scores(
    producer: KafkaProducer, topic: str, scores: Sequence[ShadowScore]
) -> list[FutureRecordMetadata]:
    """Send the batch's shadow scores; the futures join the batch's other sends."""
    return [
        producer.send(topic, key=score.kafka_key(), value=score.to_json_bytes()) for score in scores
    ]
