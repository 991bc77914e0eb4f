"""Dataset versions built from what Vigil already holds: a camera's frames over a time range
(read back from the frames topic) or reviewed events' peak frames (``domain/dataset_sources.py``).

A camera-scoped key builds only from its own cameras (another camera answers 404, as one that
does not exist) and only into datasets its scope owns (403 otherwise; ``domain/dataset_versions``).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from vigil_api.core import problems
from vigil_api.core.auth import OperatorDep
from vigil_api.core.build_slots import BUILD_SLOT
from vigil_api.core.deps import ClientsDep, SessionDep
from vigil_api.domain.dataset_sources import (
    EventFilter,
    FrameRange,
    SourceError,
    frames_from_topic,
    reviewed_event_frames,
)
from vigil_api.routes.datasets import (
    SAME_CONTENT,
    CreatedVersion,
    NamePath,
    store,
)
from vigil_shared.dataset_groups import DEFAULT_GAP_S, DEFAULT_SEGMENT_S
from vigil_shared.datasets import Label
from vigil_shared.kafka import make_consumer
from vigil_shared.schemas.frames import CameraId
from vigil_shared.schemas.inputs import SafeText

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


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
    description: SafeText = ""
    gap_s: float = Field(
        default=DEFAULT_GAP_S,
        gt=0,
        le=86_400,
        description="A pause longer than this (seconds) between frames starts a new group.",
    )
    segment_s: float = Field(
        default=DEFAULT_SEGMENT_S,
        gt=0,
        le=7 * 86_400,
        description="A group (time segment) is at most this long (seconds).",
    )

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
    description: SafeText = ""


@router.post(
    "/{name}/versions/from-camera",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedVersion,
    responses=SAME_CONTENT | problems.responses(403, 404, 422, 503),
    dependencies=[BUILD_SLOT],
)
def version_from_camera(
    name: NamePath,
    body: FromCameraIn,
    request: Request,
    response: Response,
    session: SessionDep,
    clients: ClientsDep,
    principal: OperatorDep,
) -> CreatedVersion:
    """Every ``every_n``-th frame a camera sent between ``start`` and ``end``, one label, in
    groups of contiguous footage (split at pauses over ``gap_s``, at most ``segment_s`` long).
    A camera-scoped key may add only to a dataset its scope owns (403 otherwise)."""
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
        gap_s=body.gap_s,
        segment_s=body.segment_s,
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
    return store(
        request,
        response,
        principal,
        session=session,
        clients=clients,
        name=name,
        images=images,
        source="camera",
        description=body.description,
    )


@router.post(
    "/{name}/versions/from-events",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedVersion,
    responses=SAME_CONTENT | problems.responses(403, 404, 422, 503),
    dependencies=[BUILD_SLOT],
)
def version_from_events(
    name: NamePath,
    body: FromEventsIn,
    request: Request,
    response: Response,
    session: SessionDep,
    clients: ClientsDep,
    principal: OperatorDep,
) -> CreatedVersion:
    """Reviewed events' peak frames, each event its own group: confirmed ones labelled by their
    review label (or ``abnormal``), false positives ``normal``. A camera-scoped key may add only
    to a dataset its scope owns (403 otherwise)."""
    cameras = body.camera_ids
    if cameras is not None:
        hidden = [c for c in cameras if not principal.can_see(c)]
        if hidden:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {hidden[0]} does not exist")
    elif principal.camera_ids is not None:
        cameras = sorted(principal.camera_ids)
    try:
        found = reviewed_event_frames(
            session=session,
            s3=clients.s3,
            bucket=clients.settings.common.s3.snapshots_bucket,
            wanted=EventFilter(
                camera_ids=cameras, reviews=body.review, start=body.start, end=body.end
            ),
            max_frames=clients.settings.dataset_max_frames,
        )
    except SourceError as exc:
        raise problems.invalid_field(("body",), str(exc)) from exc
    if not found.images:
        detail = "no reviewed event with a stored frame matches; review events first"
        raise problems.invalid_field(("body",), detail)
    return store(
        request,
        response,
        principal,
        session=session,
        clients=clients,
        name=name,
        images=found.images,
        source="events",
        description=body.description,
        skipped=found.skipped,
    )
