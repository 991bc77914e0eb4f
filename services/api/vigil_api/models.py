"""The model registry as operators see it: what was trained, from what, how it scored."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from vigil_api.auth import ViewerDep
from vigil_api.deps import SessionDep
from vigil_shared.db.models import Model

router = APIRouter(prefix="/api/v1/models", tags=["models"])


class ModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, protected_namespaces=())

    id: str
    name: str
    task: str
    architecture: str
    stage: str
    artifact_key: str
    artifact_sha256: str
    manifest_key: str
    dataset_sha256: str
    threshold: float
    metrics: dict[str, Any]
    job_id: uuid.UUID | None
    created_at: datetime


@router.get("", response_model=list[ModelOut])
def list_models(
    session: SessionDep, _: ViewerDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[Model]:
    return list(session.scalars(select(Model).order_by(Model.created_at.desc()).limit(limit)))


@router.get("/{model_id}", response_model=ModelOut)
def get_model(model_id: str, session: SessionDep, _: ViewerDep) -> Model:
    model = session.get(Model, model_id)
    if model is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"model {model_id} does not exist")
    return model
