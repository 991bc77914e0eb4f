"""``POST /api/v1/cameras/{camera_id}/retrain``: a camera's model retrained on its own footage
and reviews, and compared with it (``domain/retrain.py``). Like any job, fleet-wide keys only.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, model_validator

from vigil_api.core import problems
from vigil_api.core.auth import FleetOperatorDep
from vigil_api.core.build_slots import FLEET_BUILD_SLOT
from vigil_api.core.deps import ClientsDep, SessionDep
from vigil_api.domain.dataset_sources import FrameRange, SourceError
from vigil_api.domain.dataset_versions import store_version
from vigil_api.domain.retrain import (
    NothingToRetrainError,
    camera_footage,
    dataset_name,
    production_spec,
    retrain_spec,
)
from vigil_api.routes.datasets import VersionOut
from vigil_api.routes.jobs import JobOut, job_out, queue_job
from vigil_shared.dataset_groups import DEFAULT_GAP_S, DEFAULT_SEGMENT_S
from vigil_shared.datasets import DatasetError, DatasetName, DatasetRef
from vigil_shared.db.models import Camera
from vigil_shared.schemas.frames import CameraId

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])


class RetrainIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "start": "2026-12-04T20:00:00Z",
                    "end": "2026-12-05T06:00:00Z",
                    "every_n": 10,
                    "segment_s": 1800,
                }
            ]
        },
    )

    start: AwareDatetime
    end: AwareDatetime
    every_n: int = Field(default=1, ge=1, le=10_000, description="Keep one frame in every n.")
    gap_s: float = Field(default=DEFAULT_GAP_S, gt=0, le=86_400)
    segment_s: float = Field(default=DEFAULT_SEGMENT_S, gt=0, le=7 * 86_400)
    dataset: DatasetName | None = Field(
        default=None, description="Dataset to add the version to; default retrain-<camera>."
    )

    @model_validator(mode="after")
    def _ordered(self) -> RetrainIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


RETRAIN_EXAMPLE: dict[str, JsonValue] = {
    "production_model_id": "m-20261128-lobby",
    "skipped_events": [],
}


class RetrainOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [RETRAIN_EXAMPLE]})

    production_model_id: str = Field(description="Whose spec the job reuses; compared with.")
    dataset: VersionOut
    job: JobOut
    skipped_events: list[str] = Field(description="Reviewed events without a stored frame.")


@router.post(
    "/{camera_id}/retrain",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RetrainOut,
    responses=problems.responses(404, 409, 422, 503),
    dependencies=[FLEET_BUILD_SLOT],
)
def retrain(
    camera_id: CameraId,
    body: RetrainIn,
    session: SessionDep,
    clients: ClientsDep,
    principal: FleetOperatorDep,
) -> RetrainOut:
    """Build a dataset from the camera's frames in [start, end] and all its reviewed events,
    queue its production model's spec on it; the job records the candidate's comparison with
    that model (``GET /api/v1/evaluations?camera_id=``). 409: no production model to retrain."""
    if session.get(Camera, camera_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id} does not exist")
    s3 = clients.settings.common.s3
    try:
        production, spec = production_spec(
            session=session, s3=clients.s3, bucket=s3.models_bucket, camera_id=camera_id
        )
    except NothingToRetrainError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    name = body.dataset or dataset_name(camera_id)
    wanted = FrameRange(
        camera_id=camera_id,
        start=body.start,
        end=body.end,
        every_n=body.every_n,
        label="normal",
        gap_s=body.gap_s,
        segment_s=body.segment_s,
    )
    try:
        planned = retrain_spec(spec, dataset=DatasetRef(name=name))
        footage = camera_footage(
            session=session,
            s3=clients.s3,
            snapshots_bucket=s3.snapshots_bucket,
            kafka=clients.settings.common.kafka,
            wanted=wanted,
            max_frames=clients.settings.dataset_max_frames,
            spec=planned,
        )
        row, _ = store_version(
            session=session,
            clients=clients,
            name=name,
            images=footage.images,
            source="composed",
            description=f"retrain of {camera_id} from {body.start} to {body.end}",
            principal=principal,
        )
    except (SourceError, DatasetError) as exc:
        raise problems.invalid_field(("body",), str(exc)) from exc
    dataset = DatasetRef(name=row.name, version=row.version)
    job_spec = planned.model_copy(update={"dataset": dataset})
    job = queue_job(session=session, clients=clients, spec=job_spec, actor=principal.name)
    return RetrainOut(
        production_model_id=production,
        dataset=VersionOut.model_validate(row),
        job=job_out(job, lost_after_s=clients.settings.job_worker_lost_after_s),
        skipped_events=footage.skipped_events,
    )
