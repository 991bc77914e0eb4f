"""Builds ingest from settings: the Kafka producer and metrics are created once, then injected."""

from __future__ import annotations

import logging
import threading

from vigil_ingest.camera import build_camera
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
    ``KafkaUnavailableError`` when no broker answers: both are configuration to fix, not faults
    to retry. A camera that is unreachable is retried and reported offline instead.
    """
    if not settings.source:
        raise SourceError("no source: set VIGIL_INGEST_SOURCE to a video file or stream URL")
    check_exists(settings.source)
    kafka = settings.common.kafka
    ensure_topics(kafka, kafka.topics.all())
    producer = make_producer(kafka, max_block_ms=settings.max_block_ms)
    metrics = metrics or IngestMetrics()
    server = (
        serve_metrics(metrics, settings.metrics_port) if settings.metrics_port is not None else None
    )
    camera = build_camera(settings, producer=producer, metrics=metrics)
    # FFmpeg calls are bounded by the open and read timeouts, Kafka sends by max_block_ms.
    grace_s = max(settings.open_timeout_s, settings.read_timeout_s, settings.max_block_ms / 1000)
    camera.start()
    try:
        while not camera.done() and not stop.wait(0.2):
            pass
    finally:
        finish = camera.close(timeout_s=grace_s + 1)
        producer.flush(timeout=30)
        producer.close(timeout=10)
        if server is not None:
            server.shutdown()
            server.server_close()
    log.info("camera stopped", extra={"reason": finish.reason, "frames": camera.published})
    return finish
