"""The FastAPI application (``uvicorn --factory vigil_api.main:create_app``)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from celery import Celery
from fastapi import Depends, FastAPI
from redis import Redis

from vigil_api import console
from vigil_api.core import problems
from vigil_api.core.auth import authenticated
from vigil_api.core.build_slots import BuildSlots
from vigil_api.core.deps import Clients
from vigil_api.core.middleware import (
    BodyLimit,
    BodyLimitMiddleware,
    JsonBodyGuardMiddleware,
    MetricsMiddleware,
    RequestIdMiddleware,
)
from vigil_api.core.settings import ApiSettings, get_settings
from vigil_api.domain.job_watch import JobWatch
from vigil_api.domain.registry_stages import Publisher
from vigil_api.routes import (
    api_docs,
    camera_frames,
    cameras,
    dataset_builds,
    dataset_compose,
    datasets,
    deletions,
    evaluations,
    event_stream,
    events,
    feedback,
    gate,
    health,
    ingest_cameras,
    jobs,
    keys,
    live_loop,
    model_stages,
    registry,
    replays,
    retrain,
)
from vigil_shared.db.engine import make_engine, make_session_factory
from vigil_shared.kafka import make_producer
from vigil_shared.logging import configure_logging
from vigil_shared.storage import ensure_buckets, make_s3_client


def build_clients(settings: ApiSettings) -> Clients:
    common = settings.common
    engine = make_engine(common.database)
    s3 = make_s3_client(common.s3)
    ensure_buckets(s3, common.s3)
    return Clients(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        s3=s3,
        celery=Celery("vigil_api", broker=common.redis.url),
        redis=Redis.from_url(common.redis.url, socket_timeout=5),
        assignments=Publisher(
            producer=make_producer(common.kafka),
            topic=common.kafka.topics.model_assignments,
            timeout_s=settings.assignment_publish_timeout_s,
        ),
    )


def job_watch(clients: Clients) -> JobWatch:
    settings = clients.settings
    return JobWatch(
        sessions=clients.sessions,
        celery=clients.celery,
        lost_after_s=settings.job_worker_lost_after_s,
        retries=settings.job_retries_after_worker_lost,
    )


def body_limits(settings: ApiSettings) -> dict[str, Any]:
    """Every request body is small JSON, but a dataset archive's."""
    archive = BodyLimit(
        settings.archive_max_bytes + datasets.MULTIPART_OVERHEAD,
        f"the archive is larger than {settings.archive_max_bytes} bytes "
        "(VIGIL_API_ARCHIVE_MAX_BYTES); split it into several versions",
    )
    json = BodyLimit(
        settings.body_max_bytes,
        f"the request body is larger than {settings.body_max_bytes} bytes "
        "(VIGIL_API_BODY_MAX_BYTES); send less in one request",
    )
    return {
        "default": json,
        "routes": {("POST", datasets.UPLOAD_PATH): archive},
    }


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        clients = build_clients(settings)
        app.state.clients = clients
        app.state.event_streams = event_stream.StreamRegistry(settings.max_event_streams)
        app.state.build_slots = BuildSlots(
            settings.version_builds_at_once, settings.version_build_wait_s
        )
        stop_watch = threading.Event()
        watch = threading.Thread(
            target=job_watch(clients).run,
            args=(stop_watch,),
            kwargs={"interval_s": settings.job_sweep_interval_s},
            name="job-watch",
            daemon=True,
        )
        watch.start()
        try:
            yield
        finally:
            stop_watch.set()
            watch.join(timeout=10)
            app.state.event_streams.stopping.set()
            clients.assignments.producer.close(timeout=5)
            clients.redis.close()
            clients.engine.dispose()

    configure_logging("api", settings.common.log_level)
    app = FastAPI(
        title="Vigil API",
        version="0.1.0",
        summary="Cameras, datasets, fine-tuning jobs, models and anomaly events.",
        lifespan=lifespan,
        docs_url=None,  # api_docs serves both pages from vendored assets, not from a CDN
        redoc_url=None,
    )
    problems.install(app)
    api_docs.install(app)
    console.install(app)  # /console and / (vigil_api/console)
    # Outermost last: the request id is bound before metrics and routes see the request, and a
    # body's size is counted before its JSON is checked.
    app.add_middleware(JsonBodyGuardMiddleware)
    app.add_middleware(BodyLimitMiddleware, **body_limits(settings))
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)  # the only routes that need no key
    # event_stream before events: /events/stream must match before /events/{event_id}.
    for module in (
        cameras,
        camera_frames,
        retrain,
        ingest_cameras,
        datasets,
        dataset_builds,
        dataset_compose,
        jobs,
        registry,
        model_stages,
        gate,
        evaluations,
        event_stream,
        events,
        feedback,
        keys,
        deletions,
        live_loop,
        replays,
    ):
        # Every other route needs a valid key, even one that forgets to ask for a role.
        app.include_router(
            module.router,
            dependencies=[Depends(authenticated)],
            responses=problems.responses(401),
        )
    return app
