"""Builds ingest from settings: the Kafka producer, metrics and servers are created once, then
injected into the one camera (single mode) or the fleet (fleet mode)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import httpx
from kafka import KafkaProducer

from vigil_ingest.camera import CameraPipeline, build_camera
from vigil_ingest.capture import Finish
from vigil_ingest.definitions import (
    ApiKeyStatus,
    DefinitionsError,
    fetch_definitions,
    make_api_client,
)
from vigil_ingest.fleet import Fleet
from vigil_ingest.metrics import IngestMetrics, serve_metrics
from vigil_ingest.push import PushRoutes
from vigil_ingest.push_server import PushServer, create_push_app
from vigil_ingest.settings import IngestSettings
from vigil_ingest.sources import SourceError, check_exists
from vigil_shared.health import Readiness, ready
from vigil_shared.kafka import ensure_topics, make_producer

log = logging.getLogger("vigil_ingest")
REAP_S = 1.0  # how often the fleet looks for cameras that ended by themselves


@contextlib.contextmanager
def _servers(
    settings: IngestSettings, metrics: IngestMetrics, readiness: Readiness = ready
) -> Iterator[PushRoutes | None]:
    """The metrics (and health) and push servers the settings ask for, closed on the way out;
    yields the push routes when the push endpoint runs."""
    port = settings.metrics_port
    metrics_server = serve_metrics(metrics, port, readiness) if port is not None else None
    push_server: PushServer | None = None
    routes: PushRoutes | None = None
    try:
        if settings.push_port is not None:
            routes = PushRoutes()
            app = create_push_app(routes=routes, max_bytes=settings.push_max_bytes, metrics=metrics)
            push_server = PushServer(app, host=settings.push_host, port=settings.push_port)
            push_server.start()
        yield routes
    finally:
        if push_server is not None:
            push_server.close()
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()


@contextlib.contextmanager
def _producer(settings: IngestSettings) -> Iterator[KafkaProducer]:
    kafka = settings.common.kafka
    ensure_topics(kafka, kafka.topics.all(), compacted=kafka.topics.compacted())
    producer = make_producer(kafka, max_block_ms=settings.max_block_ms)
    try:
        yield producer
    finally:
        producer.flush(timeout=30)
        producer.close(timeout=10)


def run(
    settings: IngestSettings, stop: threading.Event, metrics: IngestMetrics | None = None
) -> Finish:
    """Publish the camera's frames until its source ends or ``stop`` is set.

    Raises ``SourceError`` for a source that cannot be right (none set, a missing file) and
    ``KafkaUnavailableError`` when no broker answers (``MetricsPortError``/``PushPortError`` for a
    taken port): configuration to fix, not faults to retry. A camera that is unreachable is
    retried and reported offline instead.
    """
    if not settings.source:
        raise SourceError("no source: set VIGIL_INGEST_SOURCE to a video file or stream URL")
    check_exists(settings.source)
    metrics = metrics or IngestMetrics()
    with _servers(settings, metrics) as routes, _producer(settings) as producer:
        camera = build_camera(settings, producer=producer, metrics=metrics, push_routes=routes)
        finish = _run_until_done(camera, stop, grace_s=grace_s(settings))
    log.info("camera stopped", extra={"reason": finish.reason, "frames": camera.published})
    return finish


def run_fleet(
    settings: IngestSettings,
    stop: threading.Event,
    *,
    metrics: IngestMetrics | None = None,
    client: httpx.Client | None = None,
) -> None:
    """Run the API's enabled cameras until ``stop``, re-reading them every
    ``camera_refresh_s``. Raises ``DefinitionsError`` when the API refuses the key at start;
    an API that cannot be reached leaves the running cameras as they are."""
    metrics = metrics or IngestMetrics()
    client = client or make_api_client(settings)
    key = ApiKeyStatus(metrics)
    with _servers(settings, metrics, key.readiness) as routes, _producer(settings) as producer:
        fleet = Fleet(
            base=settings,
            producer=producer,
            metrics=metrics,
            grace_s=grace_s(settings),
            push_routes=routes,
        )
        try:
            _follow(fleet, client, settings=settings, stop=stop, metrics=metrics, key=key)
        finally:
            fleet.close()
            client.close()


def _follow(
    fleet: Fleet,
    client: httpx.Client,
    *,
    settings: IngestSettings,
    stop: threading.Event,
    metrics: IngestMetrics,
    key: ApiKeyStatus | None = None,
) -> None:
    key = key or ApiKeyStatus(metrics)
    first = True
    next_refresh = time.monotonic()
    while not stop.is_set():
        if time.monotonic() >= next_refresh:
            next_refresh = time.monotonic() + settings.camera_refresh_s
            try:
                _refresh(fleet, client, metrics=metrics, key=key)
            except DefinitionsError as exc:
                if exc.fatal and first:
                    raise
            first = False
        fleet.reap()
        stop.wait(min(REAP_S, max(next_refresh - time.monotonic(), 0.05)))


def _refresh(
    fleet: Fleet, client: httpx.Client, *, metrics: IngestMetrics, key: ApiKeyStatus
) -> None:
    """Read the definitions and reconcile; a failure keeps the running cameras as they are, and
    a refused key is shown (``ApiKeyStatus``) until the API takes it again. Re-raises the
    ``DefinitionsError`` for the caller to decide whether it ends ingest (at start)."""
    try:
        definitions = fetch_definitions(client)
    except DefinitionsError as exc:
        metrics.camera_refreshes.labels("refused" if exc.fatal else "failed").inc()
        if exc.fatal and key.refused(exc):
            log.error(
                "the API refuses ingest's key: running cameras go on, but changes made in the "
                "API are not followed until ingest has a valid key",
                extra={"error": str(exc), "running": len(fleet.running)},
            )
            fleet.warn(key.problem)
        else:
            log.warning(
                "camera definitions not read; running cameras kept as they are",
                extra={"error": str(exc), "running": len(fleet.running)},
            )
        raise
    if key.accepted():
        log.info("the API takes ingest's key again")
        fleet.warn(None)
    fleet.reconcile(definitions)
    metrics.camera_refreshes.labels("ok").inc()


def grace_s(settings: IngestSettings) -> float:
    """How long a stopping camera may take: FFmpeg calls are bounded by the open and read
    timeouts, Kafka sends by ``max_block_ms``."""
    return max(settings.open_timeout_s, settings.read_timeout_s, settings.max_block_ms / 1000) + 1


def _run_until_done(camera: CameraPipeline, stop: threading.Event, *, grace_s: float) -> Finish:
    camera.start()
    try:
        while not camera.done() and not stop.wait(0.2):
            pass
    finally:
        finish = camera.close(timeout_s=grace_s)
    return finish
