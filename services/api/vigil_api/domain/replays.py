"""Replay jobs as the API starts them: checked, stored, then sent to the trainer's queue.

The trainer runs them (``vigil_trainer.replay``); the API only checks that the model and the
cameras exist, names the replay's scope (``vigil_shared.replay.scope_key``) and reads back the
row, its report and its events.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from celery import Celery
from kombu.exceptions import OperationalError as QueueError
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil_shared.db.models import Camera, Model
from vigil_shared.db.replay_models import Replay
from vigil_shared.queues import RUN_REPLAY_TASK, TASK_QUEUE
from vigil_shared.replay import ReplayStatus, scope_key


class ReplayInputError(ValueError):
    """A field names something that does not exist: ``field`` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ReplayQueueError(RuntimeError):
    pass


def submit_replay(
    *,
    session: Session,
    celery: Celery,
    model_id: str,
    camera_ids: Sequence[str],
    start: datetime,
    end: datetime,
    actor: str,
) -> Replay:
    """Store the replay, then queue it; with the queue down it is marked failed, not lost."""
    if session.get(Model, model_id) is None:
        raise ReplayInputError("model_id", f"model {model_id} is not in the registry")
    cameras = sorted(set(camera_ids))
    known = set(session.scalars(select(Camera.id).where(Camera.id.in_(cameras))))
    unknown = [c for c in cameras if c not in known]
    if unknown:
        raise ReplayInputError("camera_ids", f"unknown camera(s): {', '.join(unknown)}")
    replay = Replay(
        scope_key=scope_key(model_id=model_id, camera_ids=cameras, start=start, end=end),
        model_id=model_id,
        camera_ids=cameras,
        range_from=start,
        range_to=end,
        status=ReplayStatus.QUEUED,
        report={},
        created_by=actor,
    )
    session.add(replay)
    session.commit()
    try:
        celery.send_task(
            RUN_REPLAY_TASK,
            kwargs={"replay_id": str(replay.id)},
            queue=TASK_QUEUE,
            task_id=f"replay-{replay.id}",
        )
    except QueueError as exc:
        replay.status = ReplayStatus.FAILED
        replay.error = f"the job queue is unavailable: {exc}"
        session.commit()
        raise ReplayQueueError(replay.error) from exc
    return replay


def find_replay(session: Session, replay_id: uuid.UUID) -> Replay | None:
    return session.get(Replay, replay_id)
