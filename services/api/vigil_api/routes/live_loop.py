"""The live loop as the API shows it: shadow reports, rollback watches and a camera's loop
timeline (docs/live-loop.md). The loop process writes them; these routes only read.

A camera-scoped key sees the reports of its cameras only, the watches of its cameras' scopes
(and of the global scope, which applies to them), and the timeline of a camera it may see; any
other camera answers 404, as one that does not exist.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy import select

from vigil_api.core import problems
from vigil_api.core.auth import ViewerDep
from vigil_api.core.deps import SessionDep
from vigil_api.domain.camera_loop import camera_loop
from vigil_shared.db.loop_models import RollbackWatch, ShadowReport
from vigil_shared.schemas.assignments import GLOBAL_SCOPE
from vigil_shared.schemas.frames import CameraId

router = APIRouter(prefix="/api/v1", tags=["live loop"])
Limit = Annotated[int, Query(ge=1, le=500, description="Most items, newest first.")]


REPORT_EXAMPLE: dict[str, JsonValue] = {
    "id": "3c2a4f7e-1b7d-5c55-9a51-5a3c1f0de7a1",
    "camera_id": "lobby-north",
    "shadow_model_id": "m-20261205-retrained",
    "production_model_id": "m-20261128-walkway",
    "window_from": "2026-12-05T08:00:00Z",
    "window_to": "2026-12-05T08:05:00Z",
    "frames": 3000,
    "agreement": 0.987,
    "would_be_events": 2,
    "production_events": 3,
    "score_drift": -0.04,
    "passed": True,
    "reasons": [],
    "figures": {"confirmed_events": 1, "confirmed_missed": [], "false_positive_events": 2},
    "promoted": True,
    "promotion_note": "shadow report 3c2a4f7e-...: agreement 0.987 over 3000 frames",
    "created_at": "2026-12-05T08:05:02Z",
}
WATCH_EXAMPLE: dict[str, JsonValue] = {
    "id": "9d1e2f3a-4b5c-4d6e-8f70-1a2b3c4d5e6f",
    "change_id": "0b8e6f1a-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
    "scope": "lobby-north",
    "model_id": "m-20261205-retrained",
    "previous_model_id": "m-20261128-walkway",
    "promoted_at": "2026-12-05T08:05:02Z",
    "until": "2026-12-05T09:05:02Z",
    "status": "rolled_back",
    "reason": "event rate 412.0 per camera-hour, above 3.0 (3.0 x the previous model's)",
    "figures": {"events": 12, "previous_events": 0, "reviewed": 0},
    "checked_at": "2026-12-05T08:06:47Z",
    "ended_at": "2026-12-05T08:06:47Z",
}
STEP_EXAMPLE: dict[str, JsonValue] = {
    "at": "2026-12-05T08:06:47Z",
    "kind": "rollback",
    "summary": "rollback m-20261128-walkway for the camera (was m-20261205-retrained): ...",
    "actor": "rollback-watch",
    "ref": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9",
    "detail": {"scope": "lobby-north", "reason": "event rate 412.0 per camera-hour, ..."},
}


class ShadowReportOut(BaseModel):
    """A span of live frames scored by a shadow model next to production, judged."""

    model_config = ConfigDict(
        from_attributes=True,
        protected_namespaces=(),
        json_schema_extra={"examples": [REPORT_EXAMPLE]},
    )

    id: uuid.UUID
    camera_id: str
    shadow_model_id: str
    production_model_id: str
    window_from: datetime
    window_to: datetime
    frames: int
    agreement: float = Field(description="Share of frames both models called alike.")
    would_be_events: int = Field(description="Events the shadow model would have raised.")
    production_events: int = Field(description="Events production raised in the span.")
    score_drift: float = Field(description="Mean of shadow minus production score/threshold.")
    passed: bool
    reasons: list[str] = Field(description="Why it failed; empty when it passed.")
    figures: dict[str, Any]
    promoted: bool
    promotion_note: str | None
    created_at: datetime


class RollbackWatchOut(BaseModel):
    """The watch over one promotion and how it ended."""

    model_config = ConfigDict(
        from_attributes=True,
        protected_namespaces=(),
        json_schema_extra={"examples": [WATCH_EXAMPLE]},
    )

    id: uuid.UUID
    change_id: uuid.UUID
    scope: str
    model_id: str
    previous_model_id: str | None
    promoted_at: datetime
    until: datetime
    status: str = Field(description="watching, kept, rolled_back, superseded or stuck.")
    reason: str | None
    figures: dict[str, Any]
    checked_at: datetime | None
    ended_at: datetime | None


class LoopStep(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [STEP_EXAMPLE]})

    at: datetime
    kind: str = Field(
        description="review, dataset, job, evaluation, gate_decision, shadow_report, promote, "
        "shadow, rollback, clear, rollback_watch, replay."
    )
    summary: str
    actor: str | None
    ref: str | None = Field(description="The id of the event, dataset, job, report or change.")
    detail: dict[str, Any]


class CameraLoopOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"camera_id": "lobby-north", "steps": [STEP_EXAMPLE]}]}
    )

    camera_id: str
    steps: list[LoopStep]


@router.get(
    "/shadow-reports", response_model=list[ShadowReportOut], responses=problems.responses(404)
)
def list_shadow_reports(
    session: SessionDep,
    principal: ViewerDep,
    limit: Limit = 50,
    camera_id: Annotated[CameraId | None, Query()] = None,
) -> list[ShadowReport]:
    """The latest shadow reports, of one camera or of every camera the key sees."""
    query = select(ShadowReport).order_by(ShadowReport.created_at.desc(), ShadowReport.id)
    if camera_id is not None:
        if not principal.can_see(camera_id):  # what a missing camera says: no hint it exists
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id} does not exist")
        query = query.where(ShadowReport.camera_id == camera_id)
    if principal.camera_ids is not None:
        query = query.where(ShadowReport.camera_id.in_(sorted(principal.camera_ids)))
    return list(session.scalars(query.limit(limit)))


@router.get("/rollback-watches", response_model=list[RollbackWatchOut])
def list_rollback_watches(
    session: SessionDep, principal: ViewerDep, limit: Limit = 50
) -> list[RollbackWatch]:
    """The latest promotions watched, with their outcome and the figures last measured."""
    query = select(RollbackWatch).order_by(RollbackWatch.promoted_at.desc(), RollbackWatch.id)
    if principal.camera_ids is not None:
        scopes = [*sorted(principal.camera_ids), GLOBAL_SCOPE]
        query = query.where(RollbackWatch.scope.in_(scopes))
    return list(session.scalars(query.limit(limit)))


@router.get(
    "/cameras/{camera_id}/loop",
    response_model=CameraLoopOut,
    responses=problems.responses(404),
)
def get_camera_loop(
    camera_id: CameraId, session: SessionDep, principal: ViewerDep, limit: Limit = 200
) -> CameraLoopOut:
    """The camera's loop, oldest first: reviews, dataset versions, jobs, shadow reports,
    promotions, rollbacks and why."""
    if not principal.can_see(camera_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id} does not exist")
    steps = camera_loop(session=session, camera_id=camera_id, limit=limit)
    return CameraLoopOut(camera_id=camera_id, steps=[LoopStep.model_validate(s) for s in steps])
