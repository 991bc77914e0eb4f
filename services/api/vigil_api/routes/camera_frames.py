"""A camera's current frame: the latest JPEG it sent, read back from the frames topic.

The console shows it beside the camera's status with the masks drawn on it. The read looks back
``VIGIL_API_FRAME_LOOKBACK_S`` (by record time) and no further, so its cost is bounded by what a
camera sends in that window; a camera that sent nothing in it answers 404 saying so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from vigil_api.core import problems
from vigil_api.core.auth import ViewerDep
from vigil_api.core.deps import Clients, ClientsDep, SessionDep
from vigil_api.domain.dataset_sources import FrameRange, SourceError, frames_from_topic
from vigil_api.routes.cameras import visible_camera
from vigil_shared.datasets import NewImage
from vigil_shared.kafka import make_consumer
from vigil_shared.schemas.frames import CameraId

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])
# A bound on the frames held while looking for the last: a camera at 30 fps for 10 s sends 300.
MAX_LOOKBACK_FRAMES = 100_000


@router.get(
    "/{camera_id}/frame",
    response_class=Response,
    responses={
        200: {
            "content": {
                "image/jpeg": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "(JPEG bytes)",
                }
            },
            "description": "The latest frame; ``X-Vigil-Frame-Seq`` and "
            "``X-Vigil-Captured-At`` say which.",
        },
        **problems.responses(404, 503),
    },
)
async def get_frame(
    camera_id: CameraId, session: SessionDep, clients: ClientsDep, principal: ViewerDep
) -> Response:
    if visible_camera(session=session, principal=principal, camera_id=camera_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id} does not exist")
    lookback = clients.settings.frame_lookback_s
    frame = await run_in_threadpool(latest_frame, clients=clients, camera_id=camera_id)
    if frame is None:
        detail = (
            f"camera {camera_id} sent no frame in the last {lookback:g} s "
            "(VIGIL_API_FRAME_LOOKBACK_S); is ingest running and the camera enabled?"
        )
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail)
    headers = {
        "X-Vigil-Frame-Seq": str(frame.sequence),
        "X-Vigil-Captured-At": frame.captured_at.isoformat() if frame.captured_at else "",
        "Cache-Control": "no-store",
    }
    return Response(frame.data, media_type="image/jpeg", headers=headers)


def latest_frame(*, clients: Clients, camera_id: str) -> NewImage | None:
    """The camera's last frame within the lookback, or None."""
    kafka = clients.settings.common.kafka
    now = datetime.now(UTC)
    wanted = FrameRange(
        camera_id=camera_id,
        start=now - timedelta(seconds=clients.settings.frame_lookback_s),
        end=now,
        every_n=1,
        label="normal",
    )
    consumer = make_consumer(kafka, group_id=None)
    try:
        frames = frames_from_topic(
            consumer=consumer,
            topic=kafka.topics.frames,
            wanted=wanted,
            max_frames=MAX_LOOKBACK_FRAMES,
        )
    except SourceError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    finally:
        consumer.close()
    return frames[-1] if frames else None
