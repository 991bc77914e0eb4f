"""The cameras as ingest reads them: every field, the source's password included.

Every other route shows a source's password as ``***``; ingest needs the real one to open the
stream, so it reads this route with an operator key (a role that may set sources anyway). A
camera-scoped key sees only its cameras here too, so one ingest per site can hold a key for its
own cameras only. Each read is logged with the key's prefix: who fetched the secrets is on record.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import field_serializer

from vigil_api.core.auth import OperatorDep
from vigil_api.core.deps import SessionDep
from vigil_api.routes.cameras import CameraOut, list_cameras
from vigil_shared.db.models import Camera
from vigil_shared.schemas.frames import CameraId

log = logging.getLogger("vigil_api.ingest_cameras")
router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])


class IngestCameraOut(CameraOut):
    """A camera with its source as stored, password included."""

    @field_serializer("source")
    def _redact(self, source: str) -> str:  # overrides CameraOut's: ingest needs the secret
        return source


@router.get("/cameras", response_model=list[IngestCameraOut])
def get_ingest_cameras(
    session: SessionDep,
    principal: OperatorDep,
    after: Annotated[CameraId | None, Query(description="Cameras after this id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Camera]:
    cameras = list_cameras(session=session, principal=principal, after=after, limit=limit)
    log.info(
        "camera sources read in full",
        extra={"key_prefix": principal.prefix, "cameras": len(cameras)},
    )
    return cameras
