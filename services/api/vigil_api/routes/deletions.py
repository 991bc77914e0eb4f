"""Deleting events, dataset versions and models, and the audit log of every deletion.

Each route deletes through ``domain/deletion.py``, as the retention sweep does: the objects in
S3 go with the row, and an audit row records who (the key's name), what, when and why (the
optional ``reason``). Refusals are 409 problems naming what still needs the thing:

- a dataset version a model was trained on, or that an unfinished job will read, unless
  ``force=true`` (the audit row then lists what needed it);
- a model any camera or the fleet default is assigned (production or shadow), or that an
  ensemble has as a member: change the assignment or delete the ensemble first.

Events are deleted by operators within their camera scope (another camera's event answers 404,
as one that does not exist); datasets and models are fleet-wide. Only admins read the audit log.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from vigil_api.core import problems
from vigil_api.core.auth import AdminDep, FleetOperatorDep, OperatorDep
from vigil_api.core.deps import ClientsDep, SessionDep
from vigil_api.core.security import Principal
from vigil_api.domain.deletion import (
    Deletion,
    InUseError,
    delete_dataset,
    delete_events,
    delete_model,
)
from vigil_api.routes.datasets import NamePath, VersionPath
from vigil_api.routes.events import event_not_found, visible_event
from vigil_api.routes.registry import ModelPath, model_not_found
from vigil_shared.db.models import Dataset, DeletionRecord, Model
from vigil_shared.schemas.inputs import ONE_LINE, ONE_LINE_SCHEMA, RowId

router = APIRouter(prefix="/api/v1", tags=["deletion"])

ReasonText = Annotated[
    str, StringConstraints(min_length=1, max_length=500), ONE_LINE, ONE_LINE_SCHEMA
]
TargetText = Annotated[
    str, StringConstraints(min_length=1, max_length=255), ONE_LINE, ONE_LINE_SCHEMA
]
Reason = Annotated[
    ReasonText | None,
    Query(description="Why: kept in the audit log.", examples=["erasure request 2026-114"]),
]
Force = Annotated[
    bool,
    Query(description="Delete it even though a model or an unfinished job still needs it."),
]
Kind = Literal["events", "snapshots", "dataset", "model"]


class DeletionOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "at": "2026-12-04T10:00:00Z",
                    "actor": "retention",
                    "kind": "events",
                    "target": "lobby-north",
                    "reason": "retention: older than 7 days (the camera's policy)",
                    "detail": {"count": 1, "event_ids": ["1b4e28ba-2fa1-11d2-883f-0016d3cca427"]},
                }
            ]
        },
    )

    id: int
    at: datetime
    actor: str = Field(description="The key's name, or retention for the sweep.")
    kind: Kind
    target: str = Field(
        description="The camera of events and snapshots, name@version of a dataset, a model's id."
    )
    reason: str
    detail: dict[str, Any]


def _deletion(principal: Principal, reason: str | None) -> Deletion:
    return Deletion(actor=principal.name, reason=reason or "deleted through the API")


def _conflict(exc: InUseError, hint: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, f"{exc}; {hint}")


@router.delete(
    "/events/{event_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems.responses(404, 422),
)
def delete_event(
    event_id: uuid.UUID,
    session: SessionDep,
    clients: ClientsDep,
    principal: OperatorDep,
    reason: Reason = None,
) -> None:
    """Delete an event and its snapshots; a message of it arriving later is not stored."""
    row = visible_event(session=session, principal=principal, event_id=event_id)
    if row is None:
        raise event_not_found(event_id)
    delete_events(
        session=session,
        s3=clients.s3,
        bucket=clients.settings.common.s3.snapshots_bucket,
        events=[row],
        deletion=_deletion(principal, reason),
    )
    session.commit()


@router.delete(
    "/datasets/{name}/versions/{version}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems.responses(404, 409, 422),
)
def delete_dataset_version(
    name: NamePath,
    version: VersionPath,
    session: SessionDep,
    clients: ClientsDep,
    principal: FleetOperatorDep,
    force: Force = False,
    reason: Reason = None,
) -> None:
    """Delete a dataset version (its images and manifest); 409 while a model was trained on it
    or an unfinished job will read it, unless ``force=true``."""
    row = session.scalars(
        select(Dataset).where(Dataset.name == name, Dataset.version == version)
    ).one_or_none()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"dataset {name} has no version {version}")
    try:
        delete_dataset(
            session=session,
            s3=clients.s3,
            bucket=clients.settings.common.s3.datasets_bucket,
            row=row,
            deletion=_deletion(principal, reason),
            force=force,
        )
    except InUseError as exc:
        raise _conflict(exc, "delete it with force=true to break their lineage") from exc
    session.commit()


@router.delete(
    "/models/{model_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems.responses(404, 409, 422),
)
def delete_registry_model(
    model_id: ModelPath,
    session: SessionDep,
    clients: ClientsDep,
    principal: FleetOperatorDep,
    reason: Reason = None,
) -> None:
    """Delete a model (artifact, manifest, registry row); 409 while it is assigned or an
    ensemble's member."""
    row = session.get(Model, model_id)
    if row is None:
        raise model_not_found(model_id)
    try:
        delete_model(
            session=session,
            s3=clients.s3,
            bucket=clients.settings.common.s3.models_bucket,
            row=row,
            deletion=_deletion(principal, reason),
        )
    except InUseError as exc:
        hint = "assign another model (or roll back) and delete the ensemble first"
        raise _conflict(exc, hint) from exc
    session.commit()


@router.get("/audit/deletions", response_model=list[DeletionOut])
def list_deletions(
    session: SessionDep,
    _: AdminDep,
    kind: Annotated[Kind | None, Query(description="Only deletions of this kind.")] = None,
    target: Annotated[
        TargetText | None,
        Query(description="Only those of this camera, dataset (name@version) or model."),
    ] = None,
    before: Annotated[RowId | None, Query(description="Rows older than this id (paging).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeletionRecord]:
    """Every deletion, newest first: by a key (its name) or by retention."""
    query = select(DeletionRecord).order_by(DeletionRecord.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(DeletionRecord.kind == kind)
    if target is not None:
        query = query.where(DeletionRecord.target == target)
    if before is not None:
        query = query.where(DeletionRecord.id < before)
    return list(session.scalars(query))
