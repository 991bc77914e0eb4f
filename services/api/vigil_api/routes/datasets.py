"""Datasets: immutable, content-addressed versions in S3, built from an uploaded archive, a
camera's frames or reviewed events, listed with counts per label.

A version's id is the hash of its content (``vigil_shared.datasets``): uploading the same
images with the same labels again gives the same version (200, not 201) and stores nothing new.
An archive is checked whole before anything is written (``archives.py``), and a version is
written all or nothing, so a refused upload leaves no object and no row.

Camera scope: a camera-scoped key sees a version only when every image came from its cameras
(``camera_ids`` ⊆ its cameras, and not empty): an uploaded archive has no camera, so uploads
are made and seen by unscoped keys only. A scoped key may build versions from its own cameras'
frames and events.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import IO, Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, model_validator
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from vigil_api.core import problems
from vigil_api.core.auth import FleetOperatorDep, OperatorDep, ViewerDep
from vigil_api.core.deps import Clients, ClientsDep, SessionDep
from vigil_api.core.security import Principal
from vigil_api.domain.archives import ArchiveError, ArchiveLimits, read_archive
from vigil_api.domain.dataset_sources import (
    EventFilter,
    FrameRange,
    SourceError,
    frames_from_topic,
    reviewed_event_frames,
)
from vigil_shared.datasets import (
    DatasetError,
    DatasetManifest,
    DatasetRef,
    Label,
    NewImage,
    load_manifest,
    manifest_key,
    write_dataset,
)
from vigil_shared.db.models import Dataset
from vigil_shared.kafka import make_consumer
from vigil_shared.schemas.frames import CameraId

log = logging.getLogger("vigil_api.datasets")
router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])
NamePath = Annotated[
    str,
    Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$", description="Lowercase name.", examples=["gate"]),
]
VersionPath = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="The content hash.")]
MULTIPART_OVERHEAD = 64 * 1024
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "example": {"archive": "(walkway.zip)", "description": "walkway, first cut"},
                "schema": {
                    "type": "object",
                    "required": ["archive"],
                    "properties": {
                        "archive": {"type": "string", "format": "binary"},
                        "description": {"type": "string", "maxLength": 2000},
                    },
                },
            }
        },
    }
}


VERSION_EXAMPLE: dict[str, JsonValue] = {
    "name": "walkway",
    "version": "9f2c" + "0" * 60,
    "source": "upload",
    "description": "walkway, first cut",
    "n_items": 5,
    "label_counts": {"normal": 3, "abnormal": 2},
    "camera_ids": [],
    "created_by": "night-shift console",
    "created_at": "2026-11-28T12:00:00Z",
}


class VersionOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [VERSION_EXAMPLE]}
    )

    name: str
    version: str
    source: str
    description: str
    n_items: int
    label_counts: dict[str, int]
    camera_ids: list[str]
    created_by: str
    created_at: datetime


class VersionDetail(VersionOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [VERSION_EXAMPLE | {"group_counts": {"clip01": 5}}]}
    )

    group_counts: dict[str, int] = Field(description="Images per group (clip, camera).")


class CreatedVersion(VersionOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [VERSION_EXAMPLE | {"created": True, "skipped_events": []}]}
    )

    created: bool = Field(description="false: an identical version existed and was returned.")
    skipped_events: list[str] = Field(
        default_factory=list, description="Events left out: their peak frame is not stored."
    )


class DatasetSummary(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "walkway", "versions": 2, "latest": VERSION_EXAMPLE}]
        }
    )

    name: str
    versions: int
    latest: VersionOut


class DatasetOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "walkway", "versions": [VERSION_EXAMPLE]}]}
    )

    name: str
    versions: list[VersionOut] = Field(description="Oldest first.")


class FromCameraIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "camera_id": "lobby-north",
                    "start": "2026-11-28T08:00:00Z",
                    "end": "2026-11-28T08:30:00Z",
                    "every_n": 10,
                    "label": "normal",
                }
            ]
        },
    )

    camera_id: CameraId
    start: AwareDatetime
    end: AwareDatetime
    every_n: int = Field(default=1, ge=1, le=10_000, description="Keep one frame in every n.")
    label: Label = "normal"
    description: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _ordered(self) -> FromCameraIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class FromEventsIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "camera_ids": ["lobby-north"],
                    "review": ["confirmed", "false_positive"],
                    "start": "2026-11-01T00:00:00Z",
                }
            ]
        },
    )

    camera_ids: list[CameraId] | None = Field(
        default=None, max_length=500, description="Default: every camera this key sees."
    )
    review: list[Literal["confirmed", "false_positive"]] = Field(
        default=["confirmed", "false_positive"], min_length=1
    )
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    description: str = Field(default="", max_length=2000)


def visible(principal: Principal, camera_ids: list[str]) -> bool:
    """Unscoped keys see every version; scoped keys those made only of their cameras' images."""
    if principal.camera_ids is None:
        return True
    return bool(camera_ids) and set(camera_ids) <= principal.camera_ids


def visible_versions(
    *, session: Session, principal: Principal, name: str | None = None
) -> list[Dataset]:
    query = select(Dataset).order_by(Dataset.name, Dataset.created_at)
    if name is not None:
        query = query.where(Dataset.name == name)
    return [row for row in session.scalars(query) if visible(principal, row.camera_ids)]


def record_version(
    *, session: Session, manifest: DatasetManifest, actor: str, object_key: str
) -> tuple[Dataset, bool]:
    """The version's row, inserted unless it exists; ``True`` when it is new."""
    statement = (
        insert(Dataset)
        .values(
            id=uuid.uuid4(),
            name=manifest.name,
            version=manifest.version,
            source=manifest.source,
            description=manifest.description,
            manifest_key=object_key,
            n_items=len(manifest.items),
            label_counts=manifest.label_counts,
            camera_ids=manifest.camera_ids,
            created_by=actor,
        )
        .on_conflict_do_nothing(constraint="uq_datasets_name_version")
        .returning(Dataset.id)
    )
    created = session.execute(statement).scalar() is not None
    session.commit()
    row = session.scalars(
        select(Dataset).where(Dataset.name == manifest.name, Dataset.version == manifest.version)
    ).one()
    return row, created


def store_version(
    *,
    session: Session,
    clients: Clients,
    name: str,
    images: list[NewImage],
    source: Literal["upload", "camera", "events"],
    description: str,
    actor: str,
) -> tuple[Dataset, bool]:
    """Write the images as a version (all or nothing), then record it."""
    bucket = clients.settings.common.s3.datasets_bucket
    try:
        manifest = write_dataset(
            clients.s3, bucket, name=name, images=images, source=source, description=description
        )
    except DatasetError as exc:
        raise problems.invalid_field(("body",), str(exc)) from exc
    return record_version(
        session=session,
        manifest=manifest,
        actor=actor,
        object_key=manifest_key(manifest.name, manifest.version),
    )


def archive_images(fileobj: IO[bytes], *, limits: ArchiveLimits) -> list[NewImage]:
    return [
        NewImage(
            data=image.data,
            extension=image.extension,
            group=image.group,
            label=image.label,
            sequence=image.sequence,
            source_name=image.name,
        )
        for image in read_archive(fileobj, limits=limits)
    ]


def limits_of(clients: Clients) -> ArchiveLimits:
    settings = clients.settings
    return ArchiveLimits(
        max_bytes=settings.archive_max_bytes,
        max_entries=settings.archive_max_entries,
        max_uncompressed_bytes=settings.archive_max_uncompressed_bytes,
        max_ratio=settings.archive_max_ratio,
        max_pixels=settings.image_max_pixels,
    )


def _created(row: Dataset, created: bool, skipped: list[str] | None = None) -> CreatedVersion:
    return CreatedVersion(
        **VersionOut.model_validate(row).model_dump(),
        created=created,
        skipped_events=skipped or [],
    )


def _status(response: Response, created: bool) -> None:
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK


def _archive_problem(exc: ArchiveError) -> RequestValidationError:
    """One 422 naming every entry at fault: ``errors[].field`` is ``body.archive.<entry>``."""
    return RequestValidationError(
        [
            {"loc": ("body", "archive", p.entry), "msg": p.reason, "type": "value_error"}
            for p in exc.problems
        ]
    )


async def _spooled_archive(request: Request, max_bytes: int) -> tuple[IO[bytes], str]:
    """The uploaded archive, spooled to a temporary file; refused before reading when the
    declared length is over the limit (so a huge upload is never read)."""
    length = request.headers.get("content-length")
    if length is None:
        raise HTTPException(
            status.HTTP_411_LENGTH_REQUIRED, "send the archive with a Content-Length header"
        )
    if not length.isdigit() or int(length) > max_bytes + MULTIPART_OVERHEAD:
        raise HTTPException(
            413,
            f"the archive is larger than {max_bytes} bytes (VIGIL_API_ARCHIVE_MAX_BYTES); "
            "split it into several versions",
        )
    form = await request.form(max_files=1, max_fields=2)
    archive = form.get("archive")
    description = form.get("description") or ""
    if not isinstance(archive, UploadFile) or not isinstance(description, str):
        raise problems.invalid_field(
            ("body", "archive"), "send the archive as the multipart file field 'archive'"
        )
    return archive.file, description[:2000]


@router.post(
    "/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedVersion,
    openapi_extra=UPLOAD_BODY,
    responses=problems.responses(411, 413, 422),
)
async def upload_version(
    name: NamePath,
    request: Request,
    response: Response,
    clients: ClientsDep,
    principal: FleetOperatorDep,
) -> CreatedVersion:
    """Upload a zip or tar(.gz) of images, labelled by top folder or by a manifest.json/csv;
    201 for a new version, 200 when identical content already is one."""
    fileobj, description = await _spooled_archive(request, clients.settings.archive_max_bytes)
    try:
        images = await run_in_threadpool(archive_images, fileobj, limits=limits_of(clients))
    except ArchiveError as exc:
        raise _archive_problem(exc) from exc
    with clients.sessions() as session:
        row, created = await run_in_threadpool(
            store_version,
            session=session,
            clients=clients,
            name=name,
            images=images,
            source="upload",
            description=description,
            actor=principal.name,
        )
        result = _created(row, created)
    log.info("dataset version uploaded", extra={"dataset": name, "version": row.version})
    _status(response, created)
    return result


@router.post(
    "/{name}/versions/from-camera",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedVersion,
    responses=problems.responses(404, 422),
)
def version_from_camera(
    name: NamePath,
    body: FromCameraIn,
    response: Response,
    session: SessionDep,
    clients: ClientsDep,
    principal: OperatorDep,
) -> CreatedVersion:
    """Every ``every_n``-th frame a camera sent between ``start`` and ``end``, one label."""
    if not principal.can_see(body.camera_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {body.camera_id} does not exist")
    kafka = clients.settings.common.kafka
    consumer = make_consumer(kafka, group_id=None)
    wanted = FrameRange(
        camera_id=body.camera_id,
        start=body.start,
        end=body.end,
        every_n=body.every_n,
        label=body.label,
    )
    try:
        images = frames_from_topic(
            consumer=consumer,
            topic=kafka.topics.frames,
            wanted=wanted,
            max_frames=clients.settings.dataset_max_frames,
        )
    except SourceError as exc:
        raise problems.invalid_field(("body",), str(exc)) from exc
    finally:
        consumer.close()
    if not images:
        raise problems.invalid_field(
            ("body",), f"camera {body.camera_id} sent no frames in that range (or they expired)"
        )
    row, created = store_version(
        session=session,
        clients=clients,
        name=name,
        images=images,
        source="camera",
        description=body.description,
        actor=principal.name,
    )
    _status(response, created)
    return _created(row, created)


@router.post(
    "/{name}/versions/from-events",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedVersion,
    responses=problems.responses(404, 422),
)
def version_from_events(
    name: NamePath,
    body: FromEventsIn,
    response: Response,
    session: SessionDep,
    clients: ClientsDep,
    principal: OperatorDep,
) -> CreatedVersion:
    """Reviewed events' peak frames: confirmed ones labelled by their review label (or
    ``abnormal``), false positives ``normal``."""
    cameras = body.camera_ids
    if cameras is not None:
        hidden = [c for c in cameras if not principal.can_see(c)]
        if hidden:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {hidden[0]} does not exist")
    elif principal.camera_ids is not None:
        cameras = sorted(principal.camera_ids)
    found = reviewed_event_frames(
        session=session,
        s3=clients.s3,
        bucket=clients.settings.common.s3.snapshots_bucket,
        wanted=EventFilter(camera_ids=cameras, reviews=body.review, start=body.start, end=body.end),
        max_frames=clients.settings.dataset_max_frames,
    )
    if not found.images:
        detail = "no reviewed event with a stored frame matches; review events first"
        raise problems.invalid_field(("body",), detail)
    row, created = store_version(
        session=session,
        clients=clients,
        name=name,
        images=found.images,
        source="events",
        description=body.description,
        actor=principal.name,
    )
    _status(response, created)
    return _created(row, created, found.skipped)


@router.get("", response_model=list[DatasetSummary])
def list_datasets(session: SessionDep, principal: ViewerDep) -> list[DatasetSummary]:
    by_name: dict[str, list[Dataset]] = {}
    for row in visible_versions(session=session, principal=principal):
        by_name.setdefault(row.name, []).append(row)
    return [
        DatasetSummary(name=name, versions=len(rows), latest=VersionOut.model_validate(rows[-1]))
        for name, rows in by_name.items()
    ]


@router.get("/{name}", response_model=DatasetOut, responses=problems.responses(404))
def get_dataset(name: NamePath, session: SessionDep, principal: ViewerDep) -> DatasetOut:
    rows = visible_versions(session=session, principal=principal, name=name)
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"dataset {name} does not exist")
    return DatasetOut(name=name, versions=[VersionOut.model_validate(r) for r in rows])


@router.get(
    "/{name}/versions/{version}", response_model=VersionDetail, responses=problems.responses(404)
)
def get_version(
    name: NamePath,
    version: VersionPath,
    session: SessionDep,
    clients: ClientsDep,
    principal: ViewerDep,
) -> VersionDetail:
    row = session.scalars(
        select(Dataset).where(Dataset.name == name, Dataset.version == version)
    ).one_or_none()
    if row is None or not visible(principal, row.camera_ids):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"dataset {name} has no version {version}")
    manifest = load_manifest(
        clients.s3,
        clients.settings.common.s3.datasets_bucket,
        DatasetRef(name=name, version=version),
    )
    groups: dict[str, int] = {}
    for item in manifest.items:
        groups[item.group] = groups.get(item.group, 0) + 1
    return VersionDetail(**VersionOut.model_validate(row).model_dump(), group_counts=groups)
