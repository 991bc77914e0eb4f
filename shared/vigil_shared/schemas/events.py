"""The anomaly event: JSON on ``vigil.events.v1``, the contract downstream systems build on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from vigil_shared.schemas.frames import CameraId

EVENT_SCHEMA: Literal["vigil.event.v1"] = "vigil.event.v1"
_EVENT_NAMESPACE = uuid.UUID("6f0d8a4e-2a43-5b8e-9a59-3c1f6f8f7a10")


class ModelRef(BaseModel):
    """Which model scored the frame: a registry id, or the built-in warm-up scorer."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    id: str = Field(min_length=1, max_length=128)
    kind: Literal["registry", "warmup"]


class AnomalyEvent(BaseModel):
    """One frame whose anomaly score reached the camera's threshold.

    ``event_id`` is derived from (camera, frame sequence, capture time, model), so scoring the
    same frame again after a crash or a replay yields the same id and consumers can deduplicate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    schema_: Literal["vigil.event.v1"] = Field(default=EVENT_SCHEMA, alias="schema")
    event_id: uuid.UUID
    camera_id: CameraId
    frame_seq: int = Field(ge=0)
    captured_at: AwareDatetime
    detected_at: AwareDatetime
    score: float = Field(ge=0, description="Anomaly score; larger is more anomalous.")
    threshold: float = Field(ge=0, description="The camera's threshold the score reached.")
    model: ModelRef

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def event_id_for(
    *, camera_id: str, frame_seq: int, captured_at: datetime, model_id: str
) -> uuid.UUID:
    """Same frame and model, same id; the capture time tells apart the frames of two ingest
    runs, whose sequence numbers both start at 0."""
    stamp = captured_at.astimezone(UTC).isoformat()
    return uuid.uuid5(_EVENT_NAMESPACE, f"{camera_id}/{frame_seq}/{stamp}/{model_id}")


def make_event(
    *,
    camera_id: str,
    frame_seq: int,
    captured_at: datetime,
    detected_at: datetime,
    score: float,
    threshold: float,
    model: ModelRef,
) -> AnomalyEvent:
    return AnomalyEvent(
        event_id=event_id_for(
            camera_id=camera_id, frame_seq=frame_seq, captured_at=captured_at, model_id=model.id
        ),
        camera_id=camera_id,
        frame_seq=frame_seq,
        captured_at=captured_at,
        detected_at=detected_at,
        score=score,
        threshold=threshold,
        model=model,
    )
