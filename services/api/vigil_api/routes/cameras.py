"""Cameras: where each is read from, how it is sampled, what is masked, which model scores it,
and how ingest last saw it.

A camera-scoped key sees only its cameras: any other answers 404, exactly as a camera that does
not exist, so a scoped key cannot even learn which other cameras there are.

``model_id`` is a view of the camera's model assignment (``model_assignments``, scope = camera
id): setting it promotes that model for the camera (published on the assignment topic, as
``POST /models/{id}/promote`` does) and ``null`` clears it, so there is one source of truth.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from psycopg import errors as pg_errors
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_serializer, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil_api.consumers.camera_status import CameraStatusOut
from vigil_api.consumers.scoring_status import CameraScoringOut
from vigil_api.core import problems
from vigil_api.core.auth import OperatorDep, ViewerDep, forbidden
from vigil_api.core.deps import ClientsDep, SessionDep
from vigil_api.core.problems import invalid_field
from vigil_api.core.security import Principal
from vigil_api.core.settings import ApiSettings
from vigil_api.domain import registry_stages
from vigil_api.domain.camera_sources import SourceUrl, file_outside_root
from vigil_api.domain.model_scope import check_visible_model
from vigil_api.domain.registry_stages import Publisher
from vigil_api.retention.policy import retention_problem
from vigil_shared.cameras.fields import Fps, JpegQuality, Masks, Pixels, RetentionDays
from vigil_shared.cameras.sources import SOURCE_DOC, redact
from vigil_shared.db.models import Camera, Model
from vigil_shared.schemas.assignments import ModelId as RegistryModelId
from vigil_shared.schemas.frames import CameraId
from vigil_shared.schemas.inputs import SafeName

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])

Name = Annotated[SafeName, Field(examples=["Lobby, north door"])]
ModelId = Annotated[RegistryModelId, Field(description="A registry model that scores it.")]
CAMERA_IN_EXAMPLE: dict[str, JsonValue] = {
    "id": "lobby-north",
    "name": "Lobby, north door",
    "source": "rtsp://viewer:secret@cam-7.local:554/main",
    "target_fps": 5.0,
    "masks": [[[0, 0], [0.25, 0], [0.25, 0.2], [0, 0.2]]],
    "retention_days": 14,
}
CAMERA_OUT_EXAMPLE: dict[str, JsonValue] = {
    **CAMERA_IN_EXAMPLE,
    "source": "rtsp://viewer:***@cam-7.local:554/main",
    "max_width": 640,
    "max_height": 480,
    "jpeg_quality": 85,
    "enabled": True,
    "model_id": "m-20261128-walkway",
    "status": {
        "state": "online",
        "reported_state": "online",
        "reason": None,
        "since": "2026-11-28T08:00:00Z",
        "reported_at": "2026-11-28T12:00:00Z",
        "report_interval_s": 10.0,
        "last_frame_at": "2026-11-28T11:59:59.800Z",
        "fps": 4.9,
        "target_fps": 5.0,
        "frames_published": 143920,
        "frames_dropped": 12,
        "frames_gated": 80211,
        "reconnects": 1,
    },
    "scoring": {
        "model_id": "m-20261128-walkway",
        "model_kind": "registry",
        "assigned_model_id": "m-20261128-walkway",
        "shadow_model_id": None,
        "problem": None,
        "reported_at": "2026-11-28T08:00:01Z",
    },
    "rate_notice": None,
    "created_at": "2026-11-20T09:00:00Z",
    "updated_at": "2026-11-28T07:55:00Z",
}


class CameraIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={"examples": [CAMERA_IN_EXAMPLE]},
    )

    id: CameraId = Field(examples=["lobby-north"])
    name: Name
    source: SourceUrl = Field(description=SOURCE_DOC, examples=["rtsp://cam-7.local:554/main"])
    target_fps: Fps = 5.0
    max_width: Pixels = 640
    max_height: Pixels = 480
    jpeg_quality: JpegQuality = 85
    enabled: bool = True
    masks: Masks = ()
    model_id: ModelId | None = None
    retention_days: RetentionDays | None = None


class CameraPatch(BaseModel):
    """The fields to change; ``model_id: null`` removes the model assignment,
    ``retention_days: null`` returns the camera to the global maximum."""

    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={"examples": [{"target_fps": 2.0, "model_id": None}]},
    )

    name: Name | None = None
    source: SourceUrl | None = Field(default=None, description=SOURCE_DOC)
    target_fps: Fps | None = None
    max_width: Pixels | None = None
    max_height: Pixels | None = None
    jpeg_quality: JpegQuality | None = None
    enabled: bool | None = None
    masks: Masks | None = None
    model_id: ModelId | None = None
    retention_days: RetentionDays | None = None

    @model_validator(mode="after")
    def _only_model_id_may_be_null(self) -> CameraPatch:
        nullable = {"model_id", "retention_days"}
        nulled = sorted(f for f in self.model_fields_set - nullable if getattr(self, f) is None)
        if nulled:
            raise ValueError(f"{', '.join(nulled)} may not be null; leave a field out to keep it")
        return self


class CameraOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        protected_namespaces=(),
        json_schema_extra={"examples": [CAMERA_OUT_EXAMPLE]},
    )

    id: str
    name: str
    source: str = Field(description="The source, with any password shown as ***.")
    target_fps: float
    max_width: int
    max_height: int
    jpeg_quality: int
    enabled: bool
    masks: list[list[tuple[float, float]]]
    model_id: str | None = Field(description="The camera's own production model, if any.")
    retention_days: int | None = Field(
        default=None, description="Its own retention; null: the global maximum."
    )
    status: CameraStatusOut | None = Field(description="Ingest's latest report; null: none yet.")
    scoring: CameraScoringOut | None = Field(
        default=None,
        description="Inference's latest report: the model scoring the camera and, when its "
        "assigned model cannot be loaded, why; null: none yet.",
    )
    rate_notice: str | None = Field(
        default=None,
        description="Set when the camera's frame rate (ingest's measured rate, else its "
        "target) is outside what the motion of the model scoring it was measured to handle: "
        "under half, or over 4.5 times, the frame rate its motion is in (docs/one-class.md, "
        '"Cameras at another frame rate"). The camera is still scored; null otherwise.',
    )
    created_at: datetime
    updated_at: datetime

    @field_serializer("source")
    def _redact(self, source: str) -> str:
        return redact(source)


class CameraExistsError(Exception):
    pass


def _check_references(*, session: Session, values: dict[str, Any], file_root: str | None) -> None:
    """Checks that need the database or settings; raise a 422 naming the field."""
    model_id = values.get("model_id")
    if model_id is not None and session.get(Model, model_id) is None:
        raise invalid_field(("body", "model_id"), f"model {model_id} does not exist")
    reason = file_outside_root(values.get("source") or "", file_root)
    if reason is not None:
        raise invalid_field(("body", "source"), reason)


def list_cameras(
    *, session: Session, principal: Principal, after: str | None, limit: int
) -> list[Camera]:
    query = select(Camera).order_by(Camera.id).limit(limit)
    if principal.camera_ids is not None:
        query = query.where(Camera.id.in_(sorted(principal.camera_ids)))
    if after is not None:
        query = query.where(Camera.id > after)
    return list(session.scalars(query))


def visible_camera(*, session: Session, principal: Principal, camera_id: str) -> Camera | None:
    """The camera, or None when it does not exist or is outside the key's scope."""
    return session.get(Camera, camera_id) if principal.can_see(camera_id) else None


def create_camera(
    *,
    session: Session,
    publisher: Publisher,
    spec: CameraIn,
    file_root: str | None,
    actor: str,
) -> Camera:
    values = spec.model_dump()
    _check_references(session=session, values=values, file_root=file_root)
    model_id = values.pop("model_id")
    camera = Camera(**values)
    session.add(camera)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        if isinstance(exc.orig, pg_errors.UniqueViolation):
            raise CameraExistsError(f"camera {spec.id} already exists") from exc
        raise
    _commit_with_model(
        session=session, publisher=publisher, camera=camera, model_id=model_id, actor=actor
    )
    session.refresh(camera)
    return camera


def update_camera(
    *,
    session: Session,
    publisher: Publisher,
    camera: Camera,
    patch: CameraPatch,
    file_root: str | None,
    actor: str,
) -> Camera:
    values = patch.model_dump(exclude_unset=True)
    _check_references(session=session, values=values, file_root=file_root)
    for field, value in values.items():
        if field != "model_id":
            setattr(camera, field, value)
    session.flush()
    if "model_id" in values:
        _commit_with_model(
            session=session,
            publisher=publisher,
            camera=camera,
            model_id=values["model_id"],
            actor=actor,
            clear=True,
        )
    else:
        session.commit()
    session.refresh(camera)
    return camera


def delete_camera_and_assignment(
    *, session: Session, publisher: Publisher, camera: Camera, actor: str
) -> None:
    """A deleted camera's assignment is cleared too, so inference forgets it."""
    has_assignment = camera.assignment is not None
    session.delete(camera)
    session.flush()
    if has_assignment:
        registry_stages.clear(session=session, publisher=publisher, scopes=[camera.id], actor=actor)
    else:
        session.commit()


def _commit_with_model(
    *,
    session: Session,
    publisher: Publisher,
    camera: Camera,
    model_id: str | None,
    actor: str,
    clear: bool = False,
) -> None:
    """Commit the camera together with its model change (published first), or neither."""
    if model_id is not None:
        registry_stages.promote(
            session=session, publisher=publisher, model_id=model_id, scopes=[camera.id], actor=actor
        )
    elif clear and camera.assignment is not None:
        registry_stages.clear(session=session, publisher=publisher, scopes=[camera.id], actor=actor)
    else:
        session.commit()


def check_retention(days: int | None, settings: ApiSettings) -> None:
    """A 422 at ``body.retention_days`` for a policy the deployment cannot keep."""
    problem = retention_problem(
        days,
        max_days=settings.retention_max_days,
        frames_hours=settings.common.kafka.frames_retention_hours,
    )
    if problem is not None:
        raise invalid_field(("body", "retention_days"), problem)


def _not_found(camera_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id} does not exist")


@router.get("", response_model=list[CameraOut])
def get_cameras(
    session: SessionDep,
    principal: ViewerDep,
    after: Annotated[CameraId | None, Query(description="Cameras after this id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Camera]:
    return list_cameras(session=session, principal=principal, after=after, limit=limit)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CameraOut,
    responses=problems.responses(403, 409, 422),
)
def post_camera(
    spec: CameraIn,
    request: Request,
    session: SessionDep,
    clients: ClientsDep,
    principal: OperatorDep,
) -> Camera:
    if not principal.can_see(spec.id):
        detail = f"this key is scoped to other cameras; it may not register camera {spec.id}"
        raise forbidden(request, principal, "scope", detail)
    where = ("body", "model_id")
    check_visible_model(
        session=session, principal=principal, model_id=spec.model_id, location=where
    )
    check_retention(spec.retention_days, clients.settings)
    try:
        return create_camera(
            session=session,
            publisher=clients.assignments,
            spec=spec,
            file_root=clients.settings.camera_file_root,
            actor=principal.name,
        )
    except CameraExistsError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


@router.get("/{camera_id}", response_model=CameraOut)
def get_camera(camera_id: CameraId, session: SessionDep, principal: ViewerDep) -> Camera:
    camera = visible_camera(session=session, principal=principal, camera_id=camera_id)
    if camera is None:
        raise _not_found(camera_id)
    return camera


@router.patch("/{camera_id}", response_model=CameraOut)
def patch_camera(
    camera_id: CameraId,
    patch: CameraPatch,
    session: SessionDep,
    clients: ClientsDep,
    principal: OperatorDep,
) -> Camera:
    camera = visible_camera(session=session, principal=principal, camera_id=camera_id)
    if camera is None:
        raise _not_found(camera_id)
    where = ("body", "model_id")
    check_visible_model(
        session=session, principal=principal, model_id=patch.model_id, location=where
    )
    check_retention(patch.retention_days, clients.settings)
    return update_camera(
        session=session,
        publisher=clients.assignments,
        camera=camera,
        patch=patch,
        file_root=clients.settings.camera_file_root,
        actor=principal.name,
    )


@router.delete("/{camera_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_camera(
    camera_id: CameraId, session: SessionDep, clients: ClientsDep, principal: OperatorDep
) -> None:
    camera = visible_camera(session=session, principal=principal, camera_id=camera_id)
    if camera is None:
        raise _not_found(camera_id)
    delete_camera_and_assignment(
        session=session, publisher=clients.assignments, camera=camera, actor=principal.name
    )
