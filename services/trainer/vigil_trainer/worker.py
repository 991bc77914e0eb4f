"""The Celery application: one queue of fine-tuning jobs on Redis, one job at a time per process.

``acks_late`` with ``reject_on_worker_lost`` means a job whose worker dies is redelivered rather
than lost; prefetch 1 keeps a busy worker from hoarding jobs another worker could start.
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import Celery, Task

from vigil_shared.db.engine import make_engine, make_session_factory
from vigil_shared.logging import bind
from vigil_shared.queues import RUN_JOB_TASK, RUN_REPLAY_TASK, TASK_QUEUE
from vigil_shared.storage import ensure_buckets, make_s3_client
from vigil_shared.vision.device import pick_device
from vigil_trainer.context import TrainerContext
from vigil_trainer.jobs import JobBusyError, run_job
from vigil_trainer.replay import run_replay
from vigil_trainer.settings import TrainerSettings


def build_context(settings: TrainerSettings) -> TrainerContext:
    common = settings.common
    s3 = make_s3_client(common.s3)
    ensure_buckets(s3, common.s3)
    return TrainerContext(
        s3=s3,
        s3_settings=common.s3,
        sessions=make_session_factory(make_engine(common.database)),
        device=pick_device(settings.device),
        batch_size=settings.batch_size,
        allow_weight_download=settings.allow_weight_download,
        cache_dir=settings.cache_dir,
        progress_interval_s=settings.progress_interval_s,
        heartbeat_s=settings.heartbeat_s,
        lease_s=settings.lease_s,
        events=settings.events,
    )


class JobTask(Task[Any, Any]):
    """Builds the trainer context once per worker process, on the first job it runs."""

    settings: TrainerSettings
    _context: TrainerContext | None = None

    @property
    def context(self) -> TrainerContext:
        if self._context is None:
            self._context = build_context(self.settings)
        return self._context


def create_app(settings: TrainerSettings) -> Celery:
    app = Celery(
        "vigil_trainer", broker=settings.common.redis.url, backend=settings.common.redis.url
    )
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=TASK_QUEUE,
        task_serializer="json",
        accept_content=["json"],
        result_expires=7 * 24 * 3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options={"visibility_timeout": settings.redelivery_after_s},
    )
    JobTask.settings = settings

    @app.task(name=RUN_JOB_TASK, base=JobTask, bind=True)
    def run_job_task(self: JobTask, job_id: str) -> dict[str, Any]:
        with bind(job_id=job_id):
            try:
                model_id = run_job(self.context, uuid.UUID(job_id))
            except JobBusyError as exc:
                # The live holder finishes it; if it dies, this retry resumes it after the lease.
                raise self.retry(
                    exc=exc, countdown=self.settings.lease_s, max_retries=None
                ) from exc
        return {"job_id": job_id, "model_id": model_id}

    @app.task(name=RUN_REPLAY_TASK, base=JobTask, bind=True)
    def run_replay_task(self: JobTask, replay_id: str) -> dict[str, Any]:
        with bind(replay_id=replay_id):
            run_replay(self.context, self.settings.common.kafka, uuid.UUID(replay_id))
        return {"replay_id": replay_id}

    return app
