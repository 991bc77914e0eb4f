"""Scoring status: JSON on the compacted ``vigil.scoring-status.v1``, keyed by camera id.

Inference publishes a camera's scoring status when the model that scores it, the model
assigned to it or the problem between them changes, so the latest record per camera says which
model scores the camera now. When the assigned model cannot be loaded (an artifact replaced in
S3, a missing file) inference keeps scoring with what it has (the camera's previous model, the
global default, the warm-up model) and ``problem`` says so: the API shows it with the camera and
the model, instead of a fallback nobody sees.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field

from vigil_shared.schemas.events import ModelRef
from vigil_shared.schemas.frames import CameraId
from vigil_shared.schemas.wire import WireMessage

SCORING_STATUS_SCHEMA: Literal["vigil.scoring-status.v1"] = "vigil.scoring-status.v1"
PROBLEM_MAX = 1000


class ScoringStatus(WireMessage):
    """Which model scores one camera, as the inference process that reads it sees it."""

    model_config = ConfigDict(protected_namespaces=())

    schema_: Literal["vigil.scoring-status.v1"] = Field(
        default=SCORING_STATUS_SCHEMA, alias="schema"
    )
    camera_id: CameraId
    model: ModelRef = Field(description="The production model scoring the camera's frames now.")
    assigned_model_id: str | None = Field(
        default=None,
        max_length=128,
        description="The production model the assignments (or VIGIL_INFERENCE_MODEL_ID) name "
        "for the camera; null: none, the warm-up model by design.",
    )
    shadow_model_id: str | None = Field(
        default=None, max_length=128, description="The shadow model scored next to it, if any."
    )
    problem: str | None = Field(
        default=None,
        max_length=PROBLEM_MAX,
        description="Why the camera is not scored as assigned, in words for an operator, e.g. "
        "'assigned model m-1 cannot be loaded: ...; scored by warmup'; null when it is.",
    )
    reported_at: AwareDatetime

    def kafka_key(self) -> bytes:
        return self.camera_id.encode()

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
