"""The audit trail of the loop: evaluations (a candidate and production on the same held-out
evidence, recorded by the trainer) and the stage history (every promotion, shadow and rollback
with who did it and why).

A camera-scoped key sees evaluations made only of its cameras' footage and the stage changes of
its cameras; the global scope's changes are for unscoped keys.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy import select

from vigil_api.core import problems
from vigil_api.core.auth import ViewerDep
from vigil_api.core.deps import SessionDep
from vigil_api.routes.gate import ID_PATTERN, ModelQuery, ScopeQuery, api_scope, db_scope
from vigil_shared.db.models import Evaluation, ModelStageChange

router = APIRouter(prefix="/api/v1", tags=["evaluations"])


EVALUATION_EXAMPLE: dict[str, JsonValue] = {
    "id": "0b8e6f1a-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
    "model_id": "m-20261205-lobby",
    "production_model_id": "m-20261128-lobby",
    "scope": "lobby-north",
    "camera_ids": ["lobby-north"],
    "dataset_name": "retrain-lobby-north",
    "dataset_version": "9f2c" + "0" * 60,
    "job_id": "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a",
    "groups": ["lobby-north/20261204T220000.000Z", "lobby-north/event-7c9e6679"],
    "metrics": {"auroc": 0.91, "aupr": 0.55, "event_recall": 1.0, "false_alarms_per_hour": 0.4},
    "production_metrics": {"auroc": 0.86, "event_recall": 0.5, "false_alarms_per_hour": 2.1},
    "detail": {"frames": 1800, "abnormal_frames": 4, "normal_hours": 0.05},
    "created_at": "2026-12-05T08:20:00Z",
}
STAGE_CHANGE_EXAMPLE: dict[str, JsonValue] = {
    "change_id": "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d",
    "scope": "lobby-north",
    "action": "promote",
    "model_id": "m-20261205-lobby",
    "previous_model_id": "m-20261128-lobby",
    "actor": "site-admin",
    "reason": "gate override: glare fix checked on the night footage by hand",
    "at": "2026-12-05T08:40:00Z",
}


class EvaluationOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [EVALUATION_EXAMPLE]}
    )

    id: uuid.UUID
    model_id: str = Field(description="The candidate.")
    production_model_id: str | None = Field(description="Compared with; None: no production.")
    scope: str = Field(description="'global' or a camera id: whose production model it was.")
    camera_ids: list[str]
    dataset_name: str
    dataset_version: str
    job_id: uuid.UUID | None
    groups: list[str] = Field(description="The held-out groups both models were scored on.")
    metrics: dict[str, Any] = Field(
        description="The candidate's figures: auroc, aupr, event_recall, false_alarms_per_hour."
    )
    production_metrics: dict[str, Any] | None
    detail: dict[str, Any] = Field(description="Frame, anomaly and review counts behind them.")
    created_at: datetime


class StageChangeOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [STAGE_CHANGE_EXAMPLE]}
    )

    change_id: uuid.UUID
    scope: str = Field(description="'global' or a camera id.")
    action: str = Field(description="promote, shadow, clear or rollback.")
    model_id: str | None
    previous_model_id: str | None
    actor: str
    reason: str | None = Field(description="A gate override's reason, an automatic rollback's.")
    at: datetime


def evaluation_out(row: Evaluation) -> EvaluationOut:
    return EvaluationOut.model_validate(row).model_copy(update={"scope": api_scope(row.scope)})


@router.get("/evaluations", response_model=list[EvaluationOut], responses=problems.responses(404))
def list_evaluations(
    session: SessionDep,
    principal: ViewerDep,
    model_id: ModelQuery = None,
    camera_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[EvaluationOut]:
    """Evaluations, newest first; ``model_id`` matches the candidate or the production model."""
    query = select(Evaluation).order_by(Evaluation.created_at.desc(), Evaluation.id)
    if model_id is not None:
        query = query.where(
            (Evaluation.model_id == model_id) | (Evaluation.production_model_id == model_id)
        )
    if camera_id is not None:
        if not principal.can_see(camera_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id} does not exist")
        query = query.where(Evaluation.camera_ids.contains([camera_id]))
    if principal.camera_ids is not None:
        query = query.where(Evaluation.camera_ids.contained_by(sorted(principal.camera_ids)))
    return [evaluation_out(r) for r in session.scalars(query.limit(limit))]


@router.get(
    "/evaluations/{evaluation_id}",
    response_model=EvaluationOut,
    responses=problems.responses(404),
)
def get_evaluation(
    evaluation_id: Annotated[uuid.UUID, Path()], session: SessionDep, principal: ViewerDep
) -> EvaluationOut:
    row = session.get(Evaluation, evaluation_id)
    if row is None or not all(principal.can_see(c) for c in row.camera_ids):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"evaluation {evaluation_id} does not exist")
    return evaluation_out(row)


@router.get("/stage-changes", response_model=list[StageChangeOut])
def list_stage_changes(
    session: SessionDep,
    principal: ViewerDep,
    scope: ScopeQuery = None,
    model_id: ModelQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[StageChangeOut]:
    """Promotions, shadows, clears and rollbacks, newest first, with actor and reason."""
    query = select(ModelStageChange).order_by(ModelStageChange.id.desc())
    if scope is not None:
        query = query.where(ModelStageChange.scope == db_scope(scope))
    if model_id is not None:
        query = query.where(
            (ModelStageChange.model_id == model_id)
            | (ModelStageChange.previous_model_id == model_id)
        )
    if principal.camera_ids is not None:
        query = query.where(ModelStageChange.scope.in_(sorted(principal.camera_ids)))
    rows = session.scalars(query.limit(limit))
    return [
        StageChangeOut.model_validate(r).model_copy(update={"scope": api_scope(r.scope)})
        for r in rows
    ]
