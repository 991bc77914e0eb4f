"""The event message: JSON on ``vigil.events.v2``, the contract downstream systems build on.

v2 describes an event's lifecycle, as an NVR does: one ``start`` when a camera's scores stay above
the threshold (k of n frames), ``update`` messages while the peak rises, one ``end``. Every message
of one event shares its ``event_id``; each message has its own deterministic ``message_id``, so a
replay after a crash repeats messages with identical ids and consumers deduplicate on them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from vigil_shared.schemas.frames import CameraId
from vigil_shared.schemas.wire import WireMessage

EVENT_SCHEMA: Literal["vigil.event.v2"] = "vigil.event.v2"
_EVENT_NAMESPACE = uuid.UUID("6f0d8a4e-2a43-5b8e-9a59-3c1f6f8f7a10")


class ModelRef(BaseModel):
    """Which model scored the frame: a registry id, or the built-in warm-up scorer."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    id: str = Field(min_length=1, max_length=128)
    kind: Literal["registry", "warmup"]


class EventPhase(StrEnum):
    START = "start"
    UPDATE = "update"
    END = "end"


class EventMessage(WireMessage):
    """One step of an anomaly event on one camera.

    ``frame_seq``/``captured_at``/``score`` are about the frame that caused this message (for an
    ``end``, the last frame of the event); ``peak_*`` about the most anomalous frame so far, the
    one in the snapshot.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    schema_: Literal["vigil.event.v2"] = Field(default=EVENT_SCHEMA, alias="schema")
    message_id: uuid.UUID = Field(description="uuid5 of (event_id, phase, frame_seq).")
    event_id: uuid.UUID = Field(
        description="uuid5 of (camera, first frame's seq and capture time, model id)."
    )
    phase: EventPhase
    camera_id: CameraId
    frame_seq: int = Field(ge=0)
    captured_at: AwareDatetime
    started_at: AwareDatetime = Field(description="Capture time of the event's first frame.")
    ended_at: AwareDatetime | None = Field(
        default=None, description="Capture time of the event's last frame; only on 'end'."
    )
    detected_at: AwareDatetime = Field(description="When inference produced this message.")
    score: float = Field(ge=0, description="Score of this message's frame; larger: more anomalous.")
    peak_score: float = Field(ge=0, description="Score of the event's most anomalous frame so far.")
    peak_frame_seq: int = Field(ge=0, description="Sequence number of that frame.")
    peak_captured_at: AwareDatetime = Field(description="Capture time of that frame.")
    threshold: float = Field(ge=0, description="The camera's threshold for this model.")
    model: ModelRef
    label: str | None = Field(
        default=None,
        max_length=64,
        description="Predicted class of the peak frame (classify models); for one_class models "
        "with a calibrated fusion, the stream it is most unusual in: appearance, motion, scene "
        "or activity.",
    )
    snapshot_key: str | None = Field(
        default=None,
        max_length=255,
        description="Key in the snapshots bucket of the peak frame with its heatmap overlaid; "
        "the raw peak frame is 'frame.jpg' next to it.",
    )

    @model_validator(mode="after")
    def _end_has_ended_at(self) -> EventMessage:
        if (self.phase is EventPhase.END) != (self.ended_at is not None):
            raise ValueError("ended_at is set on 'end' messages and only on them")
        return self

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def event_id_for(
    *, camera_id: str, frame_seq: int, captured_at: datetime, model_id: str
) -> uuid.UUID:
    """Same first frame and model, same id; the capture time tells apart the frames of two
    ingest runs, whose sequence numbers both start at 0."""
    stamp = captured_at.astimezone(UTC).isoformat()
    return uuid.uuid5(_EVENT_NAMESPACE, f"{camera_id}/{frame_seq}/{stamp}/{model_id}")


def message_id_for(*, event_id: uuid.UUID, phase: EventPhase, frame_seq: int) -> uuid.UUID:
    return uuid.uuid5(_EVENT_NAMESPACE, f"{event_id}/{phase.value}/{frame_seq}")


def snapshot_keys(*, camera_id: str, event_id: uuid.UUID) -> tuple[str, str]:
    """(overlay, raw frame) keys of an event's peak frame in the snapshots bucket."""
    prefix = f"events/{camera_id}/{event_id}"
    return f"{prefix}/overlay.jpg", f"{prefix}/frame.jpg"
