"""Replays: a registry model over a time range of cameras' retained frames, its events kept
apart from the live ones (docs/live-loop.md, "Replay"). Like any job, fleet-wide keys only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, model_validator
from sqlalchemy import select

from vigil_api.core import problems
from vigil_api.core.auth import FleetOperatorDep, FleetViewerDep
from vigil_api.core.deps import ClientsDep, SessionDep
from vigil_api.domain.replays import (
    ReplayInputError,
    ReplayQueueError,
    find_replay,
    submit_replay,
)
from vigil_shared.db.replay_models import Replay, ReplayEvent
from vigil_shared.schemas.assignments import ModelId
from vigil_shared.schemas.frames import CameraId

router = APIRouter(prefix="/api/v1/replays", tags=["replays"])
Limit = Annotated[int, Query(ge=1, le=500, description="Most items, newest first.")]

REPLAY_EXAMPLE: dict[str, JsonValue] = {
    "id": "7a1c2e3f-4b5d-4e6f-8a9b-0c1d2e3f4a5b",
    "scope_key": "5f0e...c3",
    "model_id": "m-20261205-retrained",
    "camera_ids": ["lobby-north"],
    "range_from": "2026-12-05T06:00:00Z",
    "range_to": "2026-12-05T08:00:00Z",
    "status": "succeeded",
    "error": None,
    "report": {
        "frames_scored": 7200,
        "replay_events": 2,
        "production_events": 3,
        "production_missed": ["0b8e6f1a-2c3d-4e5f-8a9b-0c1d2e3f4a5b"],
        "reviews": {"confirmed": 1, "confirmed_raised": ["..."], "false_positive": 2},
        "retention_hours": 24,
        "note": None,
    },
    "created_by": "key:ops-laptop",
    "created_at": "2026-12-05T08:10:00Z",
    "started_at": "2026-12-05T08:10:01Z",
    "finished_at": "2026-12-05T08:12:40Z",
}
EVENT_EXAMPLE: dict[str, JsonValue] = {
    "event_id": "1d2e3f4a-5b6c-5d7e-8f90-a1b2c3d4e5f6",
    "replay_id": "7a1c2e3f-4b5d-4e6f-8a9b-0c1d2e3f4a5b",
    "camera_id": "lobby-north",
    "model_id": "m-20261205-retrained",
    "frame_seq": 1042,
    "started_at": "2026-12-05T06:41:12Z",
    "ended_at": "2026-12-05T06:41:30Z",
    "peak_score": 3.2,
    "peak_frame_seq": 1050,
    "threshold": 1.0,
    "label": None,
}


class ReplayIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "model_id": "m-20261205-retrained",
                    "camera_ids": ["lobby-north"],
                    "start": "2026-12-05T06:00:00Z",
                    "end": "2026-12-05T08:00:00Z",
                }
            ]
        },
    )

    model_id: ModelId
    camera_ids: list[CameraId] = Field(min_length=1, max_length=100)
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> ReplayIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ReplayOut(BaseModel):
    """A replay, its status and (once it has finished) its report."""

    model_config = ConfigDict(
        from_attributes=True,
        protected_namespaces=(),
        json_schema_extra={"examples": [REPLAY_EXAMPLE]},
    )

    id: uuid.UUID
    scope_key: str = Field(description="Same model, cameras and range: same key, same ids.")
    model_id: str
    camera_ids: list[str]
    range_from: datetime
    range_to: datetime
    status: str = Field(description="queued, running, succeeded or failed.")
    error: str | None
    report: dict[str, Any] = Field(description="Replay against production and the reviews.")
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ReplayEventOut(BaseModel):
    """An event the replayed model would have raised (never a live alarm)."""

    model_config = ConfigDict(
        from_attributes=True,
        protected_namespaces=(),
        json_schema_extra={"examples": [EVENT_EXAMPLE]},
    )

    event_id: uuid.UUID
    replay_id: uuid.UUID = Field(description="The latest run of the replay that wrote it.")
    camera_id: str
    model_id: str
    frame_seq: int
    started_at: datetime
    ended_at: datetime | None
    peak_score: float
    peak_frame_seq: int
    threshold: float
    label: str | None


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReplayOut,
    responses=problems.responses(403, 422, 503),
)
def post_replay(
    body: ReplayIn, session: SessionDep, clients: ClientsDep, principal: FleetOperatorDep
) -> Replay:
    """Queue a replay of the cameras' retained frames in [start, end] through the model."""
    try:
        return submit_replay(
            session=session,
            celery=clients.celery,
            model_id=body.model_id,
            camera_ids=body.camera_ids,
            start=body.start,
            end=body.end,
            actor=principal.name,
        )
    except ReplayInputError as exc:
        raise problems.invalid_field(("body", exc.field), str(exc)) from exc
    except ReplayQueueError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc


@router.get("", response_model=list[ReplayOut], responses=problems.responses(403, 422))
def get_replays(session: SessionDep, _: FleetViewerDep, limit: Limit = 100) -> list[Replay]:
    query = select(Replay).order_by(Replay.created_at.desc(), Replay.id.desc()).limit(limit)
    return list(session.scalars(query))


@router.get("/{replay_id}", response_model=ReplayOut, responses=problems.responses(403, 404))
def get_replay(replay_id: uuid.UUID, session: SessionDep, _: FleetViewerDep) -> Replay:
    return _found(session, replay_id)


@router.get(
    "/{replay_id}/events",
    response_model=list[ReplayEventOut],
    responses=problems.responses(403, 404, 422),
)
def get_replay_events(
    replay_id: uuid.UUID,
    session: SessionDep,
    _: FleetViewerDep,
    limit: Annotated[int, Query(ge=1, le=5000, description="Most events, oldest first.")] = 500,
) -> list[ReplayEvent]:
    """The events of the replay's scope (every run of it), oldest first."""
    replay = _found(session, replay_id)
    query = (
        select(ReplayEvent)
        .where(ReplayEvent.scope_key == replay.scope_key)
        .order_by(ReplayEvent.started_at, ReplayEvent.event_id)
        .limit(limit)
    )
    return list(session.scalars(query))


def _found(session: SessionDep, replay_id: uuid.UUID) -> Replay:
    replay = find_replay(session, replay_id)
    if replay is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"replay {replay_id} not found")
    return replay
