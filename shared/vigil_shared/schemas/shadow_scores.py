"""Shadow scores: JSON on ``vigil.shadow-scores.v1``, keyed by camera id, one per frame that a
camera's shadow model scored, with production's score of the same frame.

Inference publishes them; the API's loop process (``vigil_api.consumers.loop_main``) folds a
span of them into a shadow report: the events the candidate would have raised (through the same
event lifecycle as production), how often it agrees with production, and how its scores drift.
A message is a fact about one frame, so a replayed frame gives an identical message (same
``frame_offset``): consumers keep the first per (camera, shadow model, offset).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field

from vigil_shared.schemas.events import ModelRef
from vigil_shared.schemas.frames import CameraId
from vigil_shared.schemas.wire import WireMessage

SHADOW_SCORE_SCHEMA: Literal["vigil.shadow-score.v1"] = "vigil.shadow-score.v1"


class ShadowScore(WireMessage):
    """One frame as the shadow model and the production model scored it."""

    model_config = ConfigDict(protected_namespaces=())

    schema_: Literal["vigil.shadow-score.v1"] = Field(default=SHADOW_SCORE_SCHEMA, alias="schema")
    camera_id: CameraId
    frame_seq: int = Field(ge=0, description="The frame's per-camera sequence number.")
    frame_offset: int = Field(ge=0, description="The frame's offset on the frames topic.")
    captured_at: AwareDatetime
    shadow: ModelRef = Field(description="The candidate scored in shadow.")
    shadow_score: float
    shadow_threshold: float
    production: ModelRef = Field(description="The model whose score raised the frame's events.")
    production_score: float
    production_threshold: float

    @property
    def shadow_hot(self) -> bool:
        return self.shadow_score >= self.shadow_threshold

    @property
    def production_hot(self) -> bool:
        return self.production_score >= self.production_threshold

    def kafka_key(self) -> bytes:
        return self.camera_id.encode()

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
