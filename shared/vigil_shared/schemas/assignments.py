"""Which model scores which cameras: the message behind every promotion and rollback.

Published on the compacted ``vigil.model-assignments.v1`` topic keyed by scope, so the latest
record per scope *is* the current assignment: an inference process reads the topic from the start
at boot to learn every camera's model, then follows it to swap models live. PostgreSQL keeps the
history (``model_stage_changes``) for audit and rollback; the topic carries only the outcome.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints

from vigil_shared.schemas.wire import WireMessage

ASSIGNMENT_SCHEMA: Literal["vigil.model-assignment.v1"] = "vigil.model-assignment.v1"
GLOBAL_SCOPE: Literal["*"] = "*"
"""The scope of the default model, used by every camera without an assignment of its own."""

Scope = Annotated[str, StringConstraints(pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$")]
ModelId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
ArtifactSha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class AssignmentAction(StrEnum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    SHADOW = "shadow"
    CLEAR = "clear"


class ModelAssignment(WireMessage):
    """The models of one scope after a change: ``production`` emits events, ``shadow`` is only
    scored and recorded next to it. ``None`` means the scope falls back (camera → global →
    the inference service's built-in warm-up scorer).

    ``*_artifact_sha256`` is the registry's (the database's) sha256 of each model's artifact,
    so inference can refuse an artifact replaced in S3 together with the manifest beside it;
    absent in records written before it was added (then only the manifest's is checked)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    schema_: Literal["vigil.model-assignment.v1"] = Field(default=ASSIGNMENT_SCHEMA, alias="schema")
    change_id: uuid.UUID
    scope: Scope = Field(description="A camera id, or '*' for the global default.")
    production_model_id: ModelId | None
    shadow_model_id: ModelId | None = None
    previous_production_model_id: ModelId | None = None
    production_artifact_sha256: ArtifactSha256 | None = Field(
        default=None, description="The registry's sha256 of the production model's artifact."
    )
    shadow_artifact_sha256: ArtifactSha256 | None = Field(
        default=None, description="The registry's sha256 of the shadow model's artifact."
    )
    action: AssignmentAction
    actor: str = Field(max_length=128, description="API key name that made the change.")
    changed_at: AwareDatetime

    def kafka_key(self) -> bytes:
        return self.scope.encode()

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
