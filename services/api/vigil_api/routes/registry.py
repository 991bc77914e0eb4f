"""The model registry as operators see it: what was trained, from what, how it scored, where it
runs, and its artifact. Stage changes (promote, shadow, rollback) are in ``model_stages.py``.

A camera-scoped key sees only the models that touch its cameras (trained on its cameras' data,
or assigned to one of them or globally: ``domain/model_scope.py``); any other answers 404, as a
model that does not exist, and so cannot be downloaded. It sees the assignments of its cameras
and the global one.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from minio.error import S3Error
from pydantic import BaseModel, ConfigDict, Field, JsonValue, computed_field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from vigil_api.consumers.scoring_status import ModelLoadProblem, load_problems
from vigil_api.core import problems
from vigil_api.core.auth import ViewerDep
from vigil_api.core.deps import ClientsDep, SessionDep
from vigil_api.core.security import Principal
from vigil_api.domain.event_snapshots import Presigner
from vigil_api.domain.model_scope import visible_model, visible_models
from vigil_shared.db.models import Model, ModelAssignmentRow
from vigil_shared.event_lifecycle import Debounce
from vigil_shared.schemas.assignments import GLOBAL_SCOPE, ModelId
from vigil_shared.storage import get_bytes

router = APIRouter(prefix="/api/v1/models", tags=["models"])
ModelPath = Annotated[ModelId, Path(description="A registry model id.")]


MODEL_EXAMPLE: dict[str, JsonValue] = {
    "id": "m-20261128-walkway",
    "name": "walkway",
    "task": "one_class",
    "architecture": "efficientnet_lite0 patch-knn+farneback|calibrated_max",
    "stage": "production",
    "artifact_key": "m-20261128-walkway/model.safetensors",
    "artifact_sha256": "4b1e" + "0" * 60,
    "manifest_key": "m-20261128-walkway/manifest.json",
    "dataset_sha256": "9f2c" + "0" * 60,
    "dataset_name": "walkway",
    "dataset_version": "9f2c" + "0" * 60,
    "parent_model_id": None,
    "threshold": 0.42,
    "metrics": {"val_auroc": 0.93},
    "job_id": "6f1c2a4e-3b7d-4f8e-9a0b-1c2d3e4f5a6b",
    "created_at": "2026-11-28T12:10:00Z",
}
ASSIGNMENT_EXAMPLE: dict[str, JsonValue] = {
    "scope": "lobby-north",
    "production_model_id": "m-20261128-walkway",
    "shadow_model_id": None,
    "updated_by": "night-shift console",
    "updated_at": "2026-11-28T12:30:00Z",
}


class ExpectedAlarms(BaseModel):
    """False alarms per camera-hour the fit expects at the model's threshold (one_class models
    fitted since calibration counts events; docs/one-class.md): events as the worker raises
    them on normal footage, extrapolated from the site's normal footage, with a 90% interval
    that is wide when that footage was short."""

    per_hour: float
    low: float
    high: float
    calibration_hours: float = Field(description="Normal footage the estimate rests on.")
    open_k: int | None = Field(
        default=None,
        description="The estimate counts events opened on open_k hot frames of open_n and "
        "closed after close_after quiet ones, the debounce the trainer read "
        "(VIGIL_INFERENCE_EVENT_*), which inference opens and closes this model's events on "
        "(unless VIGIL_INFERENCE_EVENT_FOLLOW_MODEL=false). Null: not recorded (the "
        "deployment's debounce; the close is recorded since 8 Dec).",
    )
    open_n: int | None = None
    close_after: int | None = None

    @classmethod
    def from_metrics(cls, metrics: dict[str, Any]) -> ExpectedAlarms | None:
        key = "expected_false_alarms_per_hour"
        if key not in metrics:
            return None
        debounce = Debounce.calibrated(metrics)
        return cls(
            per_hour=metrics[key],
            low=metrics[f"{key}_low"],
            high=metrics[f"{key}_high"],
            calibration_hours=metrics["calibration_hours"],
            open_k=None if debounce is None else debounce.open_k,
            open_n=None if debounce is None else debounce.open_n,
            close_after=None if debounce is None else debounce.close_after,
        )


class ModelOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        protected_namespaces=(),
        json_schema_extra={"examples": [MODEL_EXAMPLE]},
    )

    id: str
    name: str
    task: str
    architecture: str
    stage: str = Field(description="candidate, production (somewhere) or archived.")
    artifact_key: str
    artifact_sha256: str
    manifest_key: str
    dataset_sha256: str
    dataset_name: str | None
    dataset_version: str | None
    parent_model_id: str | None
    threshold: float
    metrics: dict[str, Any]
    job_id: uuid.UUID | None
    created_at: datetime

    @computed_field(  # type: ignore[prop-decorator]
        description="False alarms per camera-hour expected at the threshold, with a 90% "
        "interval (from metrics); null for models whose fit did not estimate it."
    )
    @property
    def expected_false_alarms(self) -> ExpectedAlarms | None:
        return ExpectedAlarms.from_metrics(self.metrics)


class AssignmentOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        protected_namespaces=(),
        json_schema_extra={"examples": [ASSIGNMENT_EXAMPLE]},
    )

    scope: str = Field(description="A camera id, or '*' for the global default.")
    production_model_id: str | None
    shadow_model_id: str | None
    updated_by: str
    updated_at: datetime


class ModelDetail(ModelOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                MODEL_EXAMPLE
                | {
                    "manifest": {"model_id": MODEL_EXAMPLE["id"]},
                    "assignments": [ASSIGNMENT_EXAMPLE],
                }
            ]
        }
    )

    manifest: dict[str, Any] | None = Field(
        description="The manifest stored with the artifact; null if it cannot be read."
    )
    assignments: list[AssignmentOut] = Field(
        description="Scopes (visible to this key) where it is the production or shadow model."
    )
    members: list[str] = Field(
        default_factory=list,
        description="An ensemble's member model ids, from its manifest (its lineage, as "
        "parent_model_id is a fine-tuned model's); empty for other models.",
    )
    load_problems: list[ModelLoadProblem] = Field(
        default_factory=list,
        description="Cameras (visible to this key) this model is assigned to that inference "
        "cannot move to it, with why (e.g. its artifact in S3 does not match the registry).",
    )


class MetricComparison(BaseModel):
    a: float | None
    b: float | None
    delta: float | None = Field(description="b - a, when both have the metric.")


class ComparisonOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "a": MODEL_EXAMPLE,
                    "b": MODEL_EXAMPLE | {"id": "m-20261129-walkway", "stage": "candidate"},
                    "dataset_name": "walkway",
                    "dataset_version": MODEL_EXAMPLE["dataset_version"],
                    "metrics": {"val_auroc": {"a": 0.93, "b": 0.95, "delta": 0.02}},
                }
            ]
        }
    )

    a: ModelOut
    b: ModelOut
    dataset_name: str | None
    dataset_version: str | None
    metrics: dict[str, MetricComparison]


class DownloadOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://s3.example/vigil-models/m-20261128-walkway/model.safetensors"
                    "?X-Amz-Expires=300&X-Amz-Signature=...",
                    "expires_at": "2026-11-28T12:35:00Z",
                    "artifact_sha256": MODEL_EXAMPLE["artifact_sha256"],
                }
            ]
        }
    )

    url: str
    expires_at: datetime
    artifact_sha256: str = Field(description="Check the download against this.")


def model_not_found(model_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"model {model_id} does not exist")


def model_or_404(*, session: Session, principal: Principal, model_id: str) -> Model:
    """The model, or a 404 when it does not exist or this key may not see it."""
    model = visible_model(session=session, principal=principal, model_id=model_id)
    if model is None:
        raise model_not_found(model_id)
    return model


def read_manifest(*, clients: ClientsDep, model: Model) -> dict[str, Any] | None:
    try:
        raw = get_bytes(clients.s3, clients.settings.common.s3.models_bucket, model.manifest_key)
    except S3Error:
        return None
    manifest: dict[str, Any] = json.loads(raw)
    return manifest


def visible_assignments(
    *, session: Session, principal: Principal, model_id: str | None = None
) -> list[ModelAssignmentRow]:
    query = select(ModelAssignmentRow).order_by(ModelAssignmentRow.scope)
    if model_id is not None:
        query = query.where(
            or_(
                ModelAssignmentRow.production_model_id == model_id,
                ModelAssignmentRow.shadow_model_id == model_id,
            )
        )
    rows = session.scalars(query)
    # A cleared scope keeps its row (and history) with no models: nothing to show.
    return [
        r
        for r in rows
        if (r.production_model_id or r.shadow_model_id)
        and (r.scope == GLOBAL_SCOPE or principal.can_see(r.scope))
    ]


def compare_models(*, a: Model, b: Model, manifests: tuple[dict[str, Any] | None, ...]) -> str:
    """Why two models cannot be compared; empty when their metrics are comparable."""
    version_a = a.dataset_version or a.dataset_sha256
    version_b = b.dataset_version or b.dataset_sha256
    if (a.dataset_name, version_a) != (b.dataset_name, version_b):
        return (
            f"model {a.id} was evaluated on dataset {a.dataset_name} version {version_a[:12]} "
            f"and model {b.id} on {b.dataset_name} version {version_b[:12]}; only models "
            "evaluated on the same dataset version are comparable"
        )
    groups = [((m or {}).get("evaluation") or {}).get("validation_groups") for m in manifests]
    if all(g is not None for g in groups) and sorted(groups[0] or []) != sorted(groups[1] or []):
        return (
            "the two models held out different validation groups of the same dataset version; "
            "their metrics are not on the same frames"
        )
    return ""


def metric_table(a: dict[str, Any], b: dict[str, Any]) -> dict[str, MetricComparison]:
    table = {}
    for name in sorted(set(a) | set(b)):
        va, vb = _number(a.get(name)), _number(b.get(name))
        delta = vb - va if va is not None and vb is not None else None
        table[name] = MetricComparison(a=va, b=vb, delta=delta)
    return table


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


@router.get("", response_model=list[ModelOut])
def list_models(
    session: SessionDep,
    principal: ViewerDep,
    stage: Annotated[Literal["candidate", "production", "archived"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Model]:
    """Newest first; a camera-scoped key gets only the models that touch its cameras."""
    query = (
        select(Model)
        .where(visible_models(principal))
        .order_by(Model.created_at.desc())
        .limit(limit)
    )
    if stage is not None:
        query = query.where(Model.stage == stage)
    return list(session.scalars(query))


@router.get("/assignments", response_model=list[AssignmentOut])
def list_assignments(session: SessionDep, principal: ViewerDep) -> list[ModelAssignmentRow]:
    """Every scope's models (a scoped key: the global default and its own cameras)."""
    return visible_assignments(session=session, principal=principal)


@router.get("/compare", response_model=ComparisonOut, responses=problems.responses(404, 409))
def compare(
    session: SessionDep,
    clients: ClientsDep,
    principal: ViewerDep,
    a: Annotated[ModelId, Query(description="A model id.")],
    b: Annotated[ModelId, Query(description="Another model id.")],
) -> ComparisonOut:
    model_a = model_or_404(session=session, principal=principal, model_id=a)
    model_b = model_or_404(session=session, principal=principal, model_id=b)
    manifests = (
        read_manifest(clients=clients, model=model_a),
        read_manifest(clients=clients, model=model_b),
    )
    why_not = compare_models(a=model_a, b=model_b, manifests=manifests)
    if why_not:
        raise HTTPException(status.HTTP_409_CONFLICT, why_not)
    return ComparisonOut(
        a=ModelOut.model_validate(model_a),
        b=ModelOut.model_validate(model_b),
        dataset_name=model_a.dataset_name,
        dataset_version=model_a.dataset_version or model_a.dataset_sha256,
        metrics=metric_table(model_a.metrics, model_b.metrics),
    )


@router.get("/{model_id}", response_model=ModelDetail, responses=problems.responses(404))
def get_model(
    model_id: ModelPath, session: SessionDep, clients: ClientsDep, principal: ViewerDep
) -> ModelDetail:
    model = model_or_404(session=session, principal=principal, model_id=model_id)
    assignments = visible_assignments(session=session, principal=principal, model_id=model_id)
    manifest = read_manifest(clients=clients, model=model)
    return ModelDetail(
        **ModelOut.model_validate(model).model_dump(),
        manifest=manifest,
        assignments=[AssignmentOut.model_validate(a) for a in assignments],
        members=ensemble_members(manifest),
        load_problems=load_problems(session=session, model_id=model_id, visible=principal.can_see),
    )


def ensemble_members(manifest: dict[str, Any] | None) -> list[str]:
    ensemble = (manifest or {}).get("ensemble") or {}
    return [str(member["model_id"]) for member in ensemble.get("members", [])]


@router.get("/{model_id}/download", response_model=DownloadOut, responses=problems.responses(404))
def download(
    model_id: ModelPath, session: SessionDep, clients: ClientsDep, principal: ViewerDep
) -> DownloadOut:
    """A short-lived presigned URL of the artifact (``VIGIL_API_DOWNLOAD_URL_EXPIRY_S``); a
    camera-scoped key only for a model it sees (404 otherwise)."""
    model = model_or_404(session=session, principal=principal, model_id=model_id)
    expiry = timedelta(seconds=clients.settings.download_url_expiry_s)
    s3, now = clients.settings.common.s3, datetime.now(UTC)
    url = Presigner.for_bucket(s3, s3.models_bucket, now=now, expires=expiry).url(
        model.artifact_key
    )
    return DownloadOut(
        url=url,
        expires_at=now.astimezone() + expiry,
        artifact_sha256=model.artifact_sha256,
    )
