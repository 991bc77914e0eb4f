"""Scoring status: inference's reports on ``vigil.scoring-status.v1``, the latest per camera.

Stored by the camera status consumer (``camera_status.StatusRecorder``) in ``camera_scoring``,
in the same transaction as ingest's reports, newest per camera. The API shows a camera's record
as its ``scoring``, and a model's cannot-be-loaded reports as its ``load_problems``, so a model
that inference refuses (an artifact replaced in S3) is seen where the model and its cameras are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil_shared.db.models import CameraScoringRow
from vigil_shared.schemas.scoring_status import ScoringStatus


class CameraScoringOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, protected_namespaces=())

    model_id: str = Field(description="The model scoring the camera's frames now.")
    model_kind: str = Field(description="registry, or warmup (the built-in scorer).")
    assigned_model_id: str | None = Field(
        description="The production model assigned to the camera; null: none."
    )
    shadow_model_id: str | None
    problem: str | None = Field(
        description="Why the camera is not scored by its assigned model (it cannot be "
        "loaded), and what scores it meanwhile; null when it is."
    )
    reported_at: datetime


class ModelLoadProblem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    camera_id: str
    problem: str
    reported_at: datetime


def scoring_row(report: ScoringStatus) -> dict[str, object]:
    return {
        "camera_id": report.camera_id,
        "model_id": report.model.id,
        "model_kind": report.model.kind,
        "assigned_model_id": report.assigned_model_id,
        "shadow_model_id": report.shadow_model_id,
        "problem": report.problem,
        "reported_at": report.reported_at,
    }


def load_problems(
    *, session: Session, model_id: str, visible: Callable[[str], bool]
) -> list[ModelLoadProblem]:
    """The cameras (those ``visible`` to the caller) whose assigned model is ``model_id`` and
    that inference could not move to it."""
    query = (
        select(CameraScoringRow)
        .where(CameraScoringRow.assigned_model_id == model_id)
        .where(CameraScoringRow.problem.is_not(None))
        .order_by(CameraScoringRow.camera_id)
    )
    rows = session.scalars(query)
    return [ModelLoadProblem.model_validate(r) for r in rows if visible(r.camera_id)]
