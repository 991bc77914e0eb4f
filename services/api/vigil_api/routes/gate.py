"""The evaluation gate over HTTP: policies per scope, running the gate for a model, and the
decisions it stored (``domain/gate.py``). Promotion runs the same check (``model_stages.py``).

Scopes are ``global`` or a camera id. Anyone may read the policies and decisions of the scopes
they see (a camera-scoped key: its cameras and the global policy); only an admin may set or
remove a policy, and a camera-scoped admin only for its own cameras.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy import select

from vigil_api.core import problems
from vigil_api.core.auth import AdminDep, OperatorDep, ViewerDep
from vigil_api.core.deps import SessionDep
from vigil_api.core.security import Principal
from vigil_api.domain import gate
from vigil_api.routes.model_stages import GLOBAL, resolve_scopes
from vigil_api.routes.registry import ModelPath, model_or_404
from vigil_shared.db.models import GateDecision, GatePolicy
from vigil_shared.schemas.assignments import GLOBAL_SCOPE
from vigil_shared.schemas.frames import CameraId

router = APIRouter(prefix="/api/v1", tags=["gate"])
# Camera ids and model ids share this shape ('global' fits it too).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ScopePath = Annotated[
    str, Path(pattern=ID_PATTERN, description="'global' or a camera id.", examples=["lobby-north"])
]
ScopeQuery = Annotated[
    str | None, Query(pattern=ID_PATTERN, description="'global' or a camera id.")
]
ModelQuery = Annotated[str | None, Query(pattern=ID_PATTERN, description="A registry model id.")]
Tolerance = Annotated[float | None, Field(ge=0, le=1_000_000)]


class PolicyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "auroc_tolerance": 0.01,
                    "recall_tolerance": 0.0,
                    "false_alarms_per_hour_tolerance": 0.5,
                }
            ]
        },
    )

    auroc_tolerance: Tolerance = Field(
        default=None, description="AUROC may be at most this much below production's."
    )
    recall_tolerance: Tolerance = Field(
        default=None, description="Event recall may be at most this much below production's."
    )
    false_alarms_per_hour_tolerance: Tolerance = Field(
        default=None, description="False alarms per hour may exceed production's by this much."
    )


class PolicyOut(PolicyIn):
    model_config = ConfigDict(from_attributes=True)

    scope: str = Field(description="'global' or a camera id.")
    updated_by: str
    updated_at: datetime


class GateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"scope": "lobby-north"}]}
    )

    scope: Literal["global"] | CameraId = Field(description="'global' or one camera id.")


DECISION_EXAMPLE: dict[str, JsonValue] = {
    "id": "6f1c1d0e-3b1a-4c55-9d1e-2f3a4b5c6d7e",
    "model_id": "m-20261205-lobby",
    "scope": "lobby-north",
    "passed": False,
    "summary": "auroc 0.8120 is below production's 0.8600 - 0.01",
    "evaluation_id": "0b8e6f1a-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
    "production_model_id": "m-20261128-lobby",
    "policy": {"scope": "*", "auroc_tolerance": 0.01, "recall_tolerance": 0.0},
    "checks": [
        {
            "rule": "auroc",
            "passed": False,
            "candidate": 0.812,
            "production": 0.86,
            "limit": 0.85,
            "why": "auroc 0.8120 is below production's 0.8600 - 0.01",
        }
    ],
    "actor": "night-shift console",
    "created_at": "2026-12-05T08:30:00Z",
}


class DecisionOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [DECISION_EXAMPLE]}
    )

    id: uuid.UUID
    model_id: str
    scope: str = Field(description="'global' or a camera id.")
    passed: bool
    summary: str = Field(description="Why it passed or, rule by rule, why not.")
    evaluation_id: uuid.UUID | None
    production_model_id: str | None = Field(description="In production when it was decided.")
    policy: dict[str, Any] | None = Field(description="The policy applied (None: no gate).")
    checks: list[dict[str, Any]] = Field(description="Each rule: figures, limit, passed, why.")
    actor: str
    created_at: datetime


def api_scope(scope: str) -> str:
    return GLOBAL if scope == GLOBAL_SCOPE else scope


def db_scope(scope: str) -> str:
    return GLOBAL_SCOPE if scope == GLOBAL else scope


def policy_out(row: GatePolicy) -> PolicyOut:
    return PolicyOut.model_validate(row).model_copy(update={"scope": api_scope(row.scope)})


def decision_out(row: GateDecision) -> DecisionOut:
    return DecisionOut.model_validate(row).model_copy(update={"scope": api_scope(row.scope)})


def sees_scope(principal: Principal, scope: str) -> bool:
    return scope == GLOBAL_SCOPE or principal.can_see(scope)


def _visible_policy(principal: Principal, session: SessionDep, scope: str) -> GatePolicy:
    row = session.get(GatePolicy, db_scope(scope))
    if row is None or not sees_scope(principal, row.scope):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no gate policy for {scope}")
    return row


@router.get("/gate-policies", response_model=list[PolicyOut])
def list_policies(session: SessionDep, principal: ViewerDep) -> list[PolicyOut]:
    """Every policy this key's scopes are gated by, global first."""
    rows = session.scalars(select(GatePolicy).order_by(GatePolicy.scope))
    return [policy_out(r) for r in rows if sees_scope(principal, r.scope)]


@router.get("/gate-policies/{scope}", response_model=PolicyOut, responses=problems.responses(404))
def get_policy(scope: ScopePath, session: SessionDep, principal: ViewerDep) -> PolicyOut:
    return policy_out(_visible_policy(principal, session, scope))


@router.put(
    "/gate-policies/{scope}", response_model=PolicyOut, responses=problems.responses(403, 404)
)
def put_policy(
    scope: ScopePath, body: PolicyIn, request: Request, session: SessionDep, principal: AdminDep
) -> PolicyOut:
    """Set the scope's policy (replacing it whole); a camera's policy overrides the global one."""
    (key,) = resolve_scopes(request=request, session=session, principal=principal, scope=scope)
    row = session.get(GatePolicy, key, with_for_update=True)
    if row is None:
        row = GatePolicy(scope=key, updated_by=principal.name)
        session.add(row)
    for field, value in body.model_dump().items():
        setattr(row, field, value)
    row.updated_by = principal.name
    row.updated_at = datetime.now().astimezone()
    session.commit()
    return policy_out(row)


@router.delete(
    "/gate-policies/{scope}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems.responses(403, 404),
)
def delete_policy(
    scope: ScopePath, request: Request, session: SessionDep, principal: AdminDep
) -> Response:
    """Remove the scope's policy: a camera falls back to the global one, global to no gate."""
    if scope == GLOBAL:
        resolve_scopes(request=request, session=session, principal=principal, scope=scope)
    session.delete(_visible_policy(principal, session, scope))
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/models/{model_id}/gate", response_model=DecisionOut, responses=problems.responses(403, 404)
)
def run_gate(
    model_id: ModelPath,
    body: GateIn,
    request: Request,
    session: SessionDep,
    principal: OperatorDep,
) -> DecisionOut:
    """Check whether the model may be promoted in the scope, and store the decision. It
    answers 200 whether it passed or not: read ``passed`` and ``summary``."""
    model_or_404(session=session, principal=principal, model_id=model_id)
    (scope,) = resolve_scopes(
        request=request, session=session, principal=principal, scope=body.scope
    )
    decision = gate.check(session=session, model_id=model_id, scope=scope, actor=principal.name)
    return decision_out(decision)


@router.get("/gate-decisions", response_model=list[DecisionOut])
def list_decisions(
    session: SessionDep,
    principal: ViewerDep,
    model_id: ModelQuery = None,
    scope: ScopeQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DecisionOut]:
    """Gate decisions, newest first, of the scopes this key sees."""
    query = select(GateDecision).order_by(GateDecision.created_at.desc(), GateDecision.id)
    if model_id is not None:
        query = query.where(GateDecision.model_id == model_id)
    if scope is not None:
        query = query.where(GateDecision.scope == db_scope(scope))
    if principal.camera_ids is not None:
        query = query.where(GateDecision.scope.in_(sorted(principal.camera_ids)))
    return [decision_out(r) for r in session.scalars(query.limit(limit))]
