"""Builds ingest from settings: the Kafka producer and metrics are created once, then injected."""

from __future__ import annotations

import logging
import threading

from vigil_ingest.camera import CameraPipeline, build_camera
from vigil_ingest.capture import Finish
from vigil_ingest.metrics import IngestMetrics, serve_metrics
from vigil_ingest.settings import IngestSettings
from vigil_ingest.sources import SourceError, check_exists
from vigil_shared.kafka import ensure_topics, make_producer

log = logging.getLogger("vigil_ingest")


def run(
    settings: IngestSettings, stop: threading.Event, metrics: IngestMetrics | None = None
) -> Finish:
    """Publish the camera's frames until its source ends or ``stop`` is set.

    Raises ``SourceError`` for a source that cannot be right (none set, a missing file) and
    ``KafkaUnavailableError`` when no broker answers (``MetricsPortError`` for a taken metrics
    port): configuration to fix, not faults to retry. A camera that is unreachable is retried
    and reported offline instead.
    """
    if not settings.source:
        raise SourceError("no source: set VIGIL_INGEST_SOURCE to a video file or stream URL")
    check_exists(settings.source)
    kafka = settings.common.kafka
    ensure_topics(kafka, kafka.topics.all(), compacted=kafka.topics.compacted())
    metrics = metrics or IngestMetrics()
    port = settings.metrics_port
    server = serve_metrics(metrics, port) if port is not None else None
    producer = make_producer(kafka, max_block_ms=settings.max_block_ms)
    try:
        camera = build_camera(settings, producer=producer, metrics=metrics)
        finish = _run_until_done(camera, stop, grace_s=_grace_s(settings))
    finally:
        producer.flush(timeout=30)
        producer.close(timeout=10)
        if server is not None:
            server.shutdown()
            server.server_close()
    log.info("camera stopped", extra={"reason": finish.reason, "frames": camera.published})
    return finish


def _grace_s(settings: IngestSettings) -> float:
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
