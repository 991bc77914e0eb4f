"""Datasets: immutable, content-addressed versions in S3, built from an uploaded archive (here)
or from a camera's frames or reviewed events (``dataset_builds.py``), listed with counts per
label.

A version's id is the hash of its content (``vigil_shared.datasets``): uploading the same
images with the same labels again gives the same version (200, not 201) and stores nothing new.
An archive is checked whole before anything is written (``archives.py``), and a version is
written all or nothing, so a refused upload leaves no object and no row.

Camera scope: a camera-scoped key sees a version only when every image came from its cameras
(``camera_ids`` ⊆ its cameras, and not empty): an uploaded archive has no camera, so uploads
are made and seen by unscoped keys only. A scoped key may build versions from its own cameras'
frames and events, and only into datasets its scope owns (``domain/dataset_versions.py``): a
fleet-wide dataset or another scope's answers 403.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import IO, Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    TypeAdapter,
    ValidationError,
)
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from vigil_api.core import problems
from vigil_api.core.auth import FleetOperatorDep, ViewerDep, forbidden
from vigil_api.core.build_slots import BuildSlotsDep
from vigil_api.core.deps import Clients, ClientsDep, SessionDep
from vigil_api.core.security import Principal
from vigil_api.domain.archives import ArchiveError
from vigil_api.domain.dataset_versions import (
    NotOwnerError,
    archive_images,
    limits_of,
    store_version,
    visible,
    visible_versions,
)
from vigil_shared.datasets import DatasetError, DatasetRef, DatasetSource, NewImage, load_manifest
from vigil_shared.db.models import Dataset
from vigil_shared.schemas.inputs import TEXT_MAX_LENGTH, TEXT_PATTERN, SafeText

log = logging.getLogger("vigil_api.datasets")
router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])
NamePath = Annotated[
    str,
    Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$", description="Lowercase name.", examples=["gate"]),
]
VersionPath = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="The content hash.")]
DESCRIPTION: TypeAdapter[str] = TypeAdapter(SafeText)
MAX_VIDEO_FPS = 120.0
VIDEO_FPS: TypeAdapter[float] = TypeAdapter(
    Annotated[float, Field(gt=0, le=MAX_VIDEO_FPS, allow_inf_nan=False)]
)
UPLOAD_PATH = "/api/v1/datasets/{name}/versions"  # its body limit is the archive's (main.py)
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
                        "description": {
                            "type": "string",
                            "maxLength": TEXT_MAX_LENGTH,
                            "pattern": TEXT_PATTERN,
                        },
                        "video_fps": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "maximum": MAX_VIDEO_FPS,
                            "description": "Keep at most this many frames a second of each "
                            "video (the camera's rate, for a recorder's 25 or 30 fps); "
                            "absent: every frame.",
                        },
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
    "owner_scope": None,
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
    owner_scope: list[str] | None = Field(
        description="The camera scope of the key that made it; null: fleet-wide (an unscoped "
        "key). Only keys whose scope covers it may add versions to the dataset."
    )
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


def _archive_problem(exc: ArchiveError) -> RequestValidationError:
    """One 422 naming every entry at fault: ``errors[].field`` is ``body.archive.<entry>``."""
    return RequestValidationError(
        [
            {"loc": ("body", "archive", p.entry), "msg": p.reason, "type": "value_error"}
            for p in exc.problems
        ]
    )


def store(
    request: Request,
    response: Response,
    principal: Principal,
    *,
    session: Session,
    clients: Clients,
    name: str,
    images: list[NewImage],
    source: DatasetSource,
    description: str,
    skipped: list[str] | None = None,
) -> CreatedVersion:
    """``store_version``, answered: 201 for a new version, 200 when identical content already
    is one; 403 for a dataset this key does not own, 422 for images that cannot be stored."""
    try:
        row, created = store_version(
            session=session,
            clients=clients,
            name=name,
            images=images,
            source=source,
            description=description,
            principal=principal,
        )
    except NotOwnerError as exc:
        raise forbidden(request, principal, "dataset owner", str(exc)) from exc
    except DatasetError as exc:
        raise problems.invalid_field(("body",), str(exc)) from exc
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return CreatedVersion(
        **VersionOut.model_validate(row).model_dump(),
        created=created,
        skipped_events=skipped or [],
    )


async def _read_form(request: Request) -> tuple[IO[bytes], str, float | None]:
    """The uploaded archive (spooled to a temporary file), its description and the rate to
    keep of its videos, all checked before anything is stored. The body's size is counted as
    it arrives (``BodyLimitMiddleware`` refuses it past ``VIGIL_API_ARCHIVE_MAX_BYTES``),
    whether or not it declares a length."""
    form = await request.form(max_files=1, max_fields=3)
    archive = form.get("archive")
    description = form.get("description") or ""
    fps = form.get("video_fps") or None
    if not isinstance(archive, UploadFile) or not isinstance(description, str):
        raise problems.invalid_field(
            ("body", "archive"), "send the archive as the multipart file field 'archive'"
        )
    try:
        description = DESCRIPTION.validate_python(description)
    except ValidationError as exc:
        raise problems.invalid_field(("body", "description"), exc.errors()[0]["msg"]) from exc
    try:
        video_fps = None if fps is None else VIDEO_FPS.validate_python(fps)
    except ValidationError as exc:
        raise problems.invalid_field(("body", "video_fps"), exc.errors()[0]["msg"]) from exc
    return archive.file, description, video_fps


SAME_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "model": CreatedVersion,
        "description": "Identical content is already a version of the dataset: that version, "
        "with created false; nothing new is stored.",
    }
}


@router.post(
    "/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedVersion,
    openapi_extra=UPLOAD_BODY,
    responses=SAME_CONTENT | problems.responses(413, 422, 503),
)
async def upload_version(
    name: NamePath,
    request: Request,
    response: Response,
    clients: ClientsDep,
    slots: BuildSlotsDep,
    principal: FleetOperatorDep,
) -> CreatedVersion:
    """Upload a zip or tar(.gz) of images and videos, labelled by top folder or by a
    manifest.json/csv (a video is a clip of frames timed by its own clock, all of them or
    ``video_fps`` a second); 201 for a new version, 200 when identical content already is
    one; 503 while ``VIGIL_API_VERSION_BUILDS_AT_ONCE`` versions are being built."""
    fileobj, description, video_fps = await _read_form(request)

    def build() -> CreatedVersion:  # on a worker thread: it waits for a slot, then decodes
        with slots.held():
            try:
                images = archive_images(fileobj, limits=limits_of(clients), video_fps=video_fps)
            except ArchiveError as exc:
                raise _archive_problem(exc) from exc
            with clients.sessions() as session:
                return store(
                    request,
                    response,
                    principal,
                    session=session,
                    clients=clients,
                    name=name,
                    images=images,
                    source="upload",
                    description=description,
                )

    result = await run_in_threadpool(build)
    log.info("dataset version uploaded", extra={"dataset": name, "version": result.version})
    return result


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
