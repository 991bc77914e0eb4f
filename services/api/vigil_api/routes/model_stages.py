"""Stage changes: which model scores which camera (promote, shadow, rollback).

Each change is published on the compacted assignment topic before it is recorded
(``vigil_api.domain.registry_stages``): a 503 means Kafka did not take the change and nothing
changed. A camera-scoped key may change only its own cameras' assignments, never the global
default; a camera outside its scope answers 404, as one that does not exist, and so does a model
it may not see (``domain/model_scope.py``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy.orm import Session

from vigil_api.core import problems
from vigil_api.core.auth import OperatorDep, forbidden
from vigil_api.core.deps import ClientsDep, SessionDep
from vigil_api.core.security import Principal, Role
from vigil_api.domain import gate, registry_stages
from vigil_api.domain.registry_stages import NothingToRollBackError, UnknownModelError
from vigil_api.routes.registry import ModelPath, model_not_found, model_or_404
from vigil_shared.db.models import Camera
from vigil_shared.schemas.assignments import GLOBAL_SCOPE, ModelAssignment
from vigil_shared.schemas.frames import CameraId
from vigil_shared.schemas.inputs import SafeText

router = APIRouter(prefix="/api/v1/models", tags=["models"])
GLOBAL = "global"

CHANGE_EXAMPLE: dict[str, JsonValue] = {
    "schema": "vigil.model-assignment.v1",
    "change_id": "0b8e6f1a-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
    "scope": "lobby-north",
    "production_model_id": "m-20261128-walkway",
    "shadow_model_id": None,
    "previous_production_model_id": "m-20261101-walkway",
    "action": "promote",
    "actor": "night-shift console",
    "changed_at": "2026-11-28T12:30:00Z",
}


class AssignmentChange(ModelAssignment):
    """The change as published on the assignment topic."""

    model_config = ConfigDict(json_schema_extra={"examples": [CHANGE_EXAMPLE]})

    @classmethod
    def of(cls, assignment: ModelAssignment) -> AssignmentChange:
        return cls.model_validate(assignment.model_dump(by_alias=True))


class ScopeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"scope": ["lobby-north"]}]}
    )

    scope: Literal["global"] | Annotated[list[CameraId], Field(min_length=1, max_length=500)] = (
        Field(description="'global' (every camera without its own) or a list of camera ids.")
    )


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[SafeText, Field(min_length=3)] = Field(
        description="Why the model goes to production although the gate refused it; kept in "
        "the stage history."
    )


class PromoteIn(ScopeIn):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"scope": ["lobby-north"]},
                {"scope": "global", "override": {"reason": "night glare fix, checked by hand"}},
            ]
        }
    )

    override: OverrideIn | None = Field(
        default=None,
        description="Admins only: promote even where the evaluation gate refuses, saying why.",
    )


class ShadowIn(ScopeIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{"scope": "global"}]})

    stop: bool = Field(default=False, description="true: stop shadowing in these scopes.")


class RollbackIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"scope": "lobby-north"}]}
    )

    scope: Literal["global"] | CameraId = Field(description="'global' or one camera id.")


def resolve_scopes(
    *,
    request: Request,
    session: Session,
    principal: Principal,
    scope: str | list[str],
) -> list[str]:
    """The assignment scopes a key asks for: ``*`` for global (unscoped keys only), or cameras
    that exist and that the key sees (any other is a 404, as in ``cameras.py``)."""
    if scope == GLOBAL:
        if principal.scoped:
            detail = "a camera-scoped key may not change the global model; name its cameras"
            raise forbidden(request, principal, "scope", detail)
        return [GLOBAL_SCOPE]
    cameras = [scope] if isinstance(scope, str) else list(dict.fromkeys(scope))
    for camera_id in cameras:
        if not principal.can_see(camera_id) or session.get(Camera, camera_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id} does not exist")
    return cameras


@router.post(
    "/rollback", response_model=AssignmentChange, responses=problems.responses(404, 409, 503)
)
def post_rollback(
    body: RollbackIn,
    request: Request,
    session: SessionDep,
    clients: ClientsDep,
    principal: OperatorDep,
) -> AssignmentChange:
    """Return a scope to the production model it had before its latest promotion."""
    (scope,) = resolve_scopes(
        request=request, session=session, principal=principal, scope=body.scope
    )
    try:
        change = registry_stages.rollback(
            session=session, publisher=clients.assignments, scope=scope, actor=principal.name
        )
    except NothingToRollBackError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return AssignmentChange.of(change)


def gate_reason(
    *,
    request: Request,
    session: Session,
    principal: Principal,
    model_id: str,
    scopes: list[str],
    override: OverrideIn | None,
) -> str | None:
    """Run the gate in every scope; the reason the stage history keeps. A refusal is a 409
    saying why and how to override, unless an admin overrides it (a 403 for anyone else)."""
    decisions = [
        gate.check(session=session, model_id=model_id, scope=s, actor=principal.name)
        for s in scopes
    ]
    refused = [d for d in decisions if not d.passed]
    if not refused:
        gated = [d for d in decisions if d.policy is not None]
        return f"gate passed ({', '.join(str(d.id) for d in gated)})" if gated else None
    why = "; ".join(f"{d.scope}: {d.summary} (decision {d.id})" for d in refused)
    if override is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"the evaluation gate refuses {model_id}: {why}. Improve and evaluate the model "
            'again, or have an admin promote it with {"override": {"reason": "..."}}',
        )
    if not principal.role.includes(Role.ADMIN):
        raise forbidden(request, principal, "gate override", "only an admin may override the gate")
    return f"gate override: {override.reason} (refused: {why})"[:4000]


@router.post(
    "/{model_id}/promote",
    response_model=list[AssignmentChange],
    responses=problems.responses(403, 404, 409, 503),
)
def promote(
    model_id: ModelPath,
    body: PromoteIn,
    request: Request,
    session: SessionDep,
    clients: ClientsDep,
    principal: OperatorDep,
) -> list[AssignmentChange]:
    """Make the model the production model of the scopes (published, then recorded), where
    the evaluation gate lets it (``/api/v1/gate-policies``): a refusal is a 409 that an admin
    may override with a reason, which the stage history keeps."""
    model_or_404(session=session, principal=principal, model_id=model_id)
    scopes = resolve_scopes(request=request, session=session, principal=principal, scope=body.scope)
    reason = gate_reason(
        request=request,
        session=session,
        principal=principal,
        model_id=model_id,
        scopes=scopes,
        override=body.override,
    )
    try:
        changes = registry_stages.promote(
            session=session,
            publisher=clients.assignments,
            model_id=model_id,
            scopes=scopes,
            actor=principal.name,
            reason=reason,
        )
    except UnknownModelError as exc:
        raise model_not_found(model_id) from exc
    return [AssignmentChange.of(c) for c in changes]


@router.post(
    "/{model_id}/shadow",
    response_model=list[AssignmentChange],
    responses=problems.responses(404, 503),
)
def post_shadow(
    model_id: ModelPath,
    body: ShadowIn,
    request: Request,
    session: SessionDep,
    clients: ClientsDep,
    principal: OperatorDep,
) -> list[AssignmentChange]:
    """Score the model beside the scopes' production models; it emits no events."""
    model_or_404(session=session, principal=principal, model_id=model_id)
    scopes = resolve_scopes(request=request, session=session, principal=principal, scope=body.scope)
    changes = registry_stages.shadow(
        session=session,
        publisher=clients.assignments,
        model_id=None if body.stop else model_id,
        scopes=scopes,
        actor=principal.name,
    )
    return [AssignmentChange.of(c) for c in changes]
