"""Kafka topic names: a public, versioned contract (see docs/topics.md).

A breaking change to a message schema gets a new topic suffix (``.v2``) so that downstream
consumers migrate on their own schedule; additive changes keep the topic. An optional namespace
(``VIGIL_KAFKA_TOPIC_NAMESPACE``, e.g. ``site-a.``) prefixes every name, so several deployments
or test runs can share one cluster without reading each other's frames.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Final

FRAMES: Final = "vigil.frames.v1"
"""JPEG frames keyed by camera id; metadata in headers (``schemas.frames.FrameHeaders``)."""

FRAMES_DEAD_LETTER: Final = "vigil.frames.dlq.v1"
"""Frames inference could not decode or score, with the reason in the ``vigil-error`` header."""

EVENTS: Final = "vigil.events.v2"
"""Event lifecycle messages as JSON (``schemas.events.EventMessage``), keyed by camera id."""

EVENTS_DEAD_LETTER: Final = "vigil.events.dlq.v1"
"""Event records the API's sink could not validate, with the reason in ``vigil-error``."""

CAMERA_STATUS: Final = "vigil.camera-status.v1"
"""Camera status as JSON (``schemas.camera_status.CameraStatus``), keyed by camera id."""

MODEL_ASSIGNMENTS: Final = "vigil.model-assignments.v1"
"""Compacted; the current ``schemas.assignments.ModelAssignment`` per scope (camera id or ``*``)."""

SCORING_STATUS: Final = "vigil.scoring-status.v1"
"""Compacted; the latest ``schemas.scoring_status.ScoringStatus`` per camera id, from inference."""

SHADOW_SCORES: Final = "vigil.shadow-scores.v1"
"""Each frame a shadow model scored, with production's score (``schemas.shadow_scores``)."""

REPLAY_EVENTS: Final = "vigil.replay.events.v2"
"""Events a replay job's model would have raised on retained frames (``schemas.events``, the
live events' schema), keyed by camera id; never mixed with ``EVENTS``."""


@dataclass(frozen=True)
class Topics:
    frames: str = FRAMES
    frames_dead_letter: str = FRAMES_DEAD_LETTER
    events: str = EVENTS
    events_dead_letter: str = EVENTS_DEAD_LETTER
    camera_status: str = CAMERA_STATUS
    model_assignments: str = MODEL_ASSIGNMENTS
    scoring_status: str = SCORING_STATUS
    shadow_scores: str = SHADOW_SCORES
    replay_events: str = REPLAY_EVENTS

    @classmethod
    def in_namespace(cls, namespace: str) -> Topics:
        return cls(*(namespace + name for name in astuple(cls())))

    def all(self) -> tuple[str, ...]:
        return tuple(astuple(self))

    def compacted(self) -> tuple[str, ...]:
        """Topics that hold state (latest record per key) rather than a stream."""
        return (self.model_assignments, self.scoring_status)
