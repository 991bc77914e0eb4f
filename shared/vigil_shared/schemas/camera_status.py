"""Camera status: JSON on ``vigil.camera-status.v1``, keyed by camera id.

Ingest publishes a camera's status when its state changes and again every
``report_interval_s`` while it runs. The periodic reports let a consumer that starts late (the
API) learn every camera's state within one interval from the end of the topic, and tell a dead
ingest process (no report for a few intervals) from a camera that is offline.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field

from vigil_shared.schemas.frames import CameraId
from vigil_shared.schemas.wire import WireMessage

CAMERA_STATUS_SCHEMA: Literal["vigil.camera-status.v1"] = "vigil.camera-status.v1"

CameraState = Literal["online", "offline", "stopped"]
"""``online``: frames arrive. ``offline``: the source cannot be opened or stopped sending, and
ingest is retrying; ``reason`` says why. ``stopped``: ingest no longer reads the camera (a file
ended, or ingest was shut down); ``reason`` says which."""


class CameraStatus(WireMessage):
    """One camera as its ingest process sees it; counters run from that process's start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_: Literal["vigil.camera-status.v1"] = Field(default=CAMERA_STATUS_SCHEMA, alias="schema")
    camera_id: CameraId
    state: CameraState
    reason: str | None = Field(
        default=None,
        max_length=1000,
        description="Why the camera is offline or stopped, in words for an operator; null while "
        "online, unless ingest has a problem of its own that affects the camera (e.g. 'api key "
        "refused: ...': the API refuses ingest's key, so changes to the camera are not followed).",
    )
    since: AwareDatetime = Field(description="When the camera entered this state.")
    reported_at: AwareDatetime
    report_interval_s: float = Field(
        gt=0, description="The next report is due within this; missing three means unknown."
    )
    last_frame_at: AwareDatetime | None = Field(
        default=None, description="Capture time of the last frame read from the source."
    )
    fps: float = Field(ge=0, description="Frames published per second since the last report.")
    target_fps: float = Field(gt=0)
    frames_published: int = Field(ge=0)
    frames_dropped: int = Field(
        ge=0, description="Frames read but not published: buffer full (oldest first) or Kafka."
    )
    frames_gated: int = Field(ge=0, description="Frames skipped by motion gating (no change).")
    reconnects: int = Field(ge=0, description="Times the source was opened again after a fault.")

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
