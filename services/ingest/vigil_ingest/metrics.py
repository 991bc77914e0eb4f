"""Prometheus metrics of ingest, per camera, in a registry of their own (one per process)."""

from __future__ import annotations

from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge

from vigil_shared import metrics as shared
from vigil_shared.health import Readiness, ready
from vigil_shared.metrics import MetricsPortError

__all__ = ["IngestMetrics", "MetricsPortError", "serve_metrics"]


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        camera = ["camera_id"]
        self.published = Counter(
            "vigil_ingest_frames_published", "Frames acknowledged by Kafka", camera, registry=r
        )
        self.dropped = Counter(
            "vigil_ingest_frames_dropped",
            "Frames read but not published (reason: buffer_full, kafka, shutdown)",
            [*camera, "reason"],
            registry=r,
        )
        self.gated = Counter(
            "vigil_ingest_frames_gated", "Frames skipped by motion gating", camera, registry=r
        )
        self.reconnects = Counter(
            "vigil_ingest_reconnects", "Source reopened after a fault", camera, registry=r
        )
        self.online = Gauge(
            "vigil_ingest_camera_online",
            "1 while frames arrive from the camera",
            camera,
            registry=r,
        )
        self.fps = Gauge(
            "vigil_ingest_fps",
            "Frames published per second, last status interval",
            camera,
            registry=r,
        )
        self.buffered = Gauge(
            "vigil_ingest_buffered_frames", "Frames waiting to be published", camera, registry=r
        )
        # No camera label: the camera id of a refused upload is whatever the caller sent.
        self.push_requests = Counter(
            "vigil_ingest_push_requests",
            "Uploads to the push endpoint (outcome: queued, gated, busy, unauthorised, "
            "unsupported_type, too_large, bad_image)",
            ["outcome"],
            registry=r,
        )
        self.camera_refreshes = Counter(
            "vigil_ingest_camera_refreshes",
            "Readings of the API's camera definitions (result: ok, failed, refused)",
            ["result"],
            registry=r,
        )
        self.api_key_refused = Gauge(
            "vigil_ingest_api_key_refused",
            "1 while the API refuses ingest's key (fleet mode): camera changes are not followed",
            registry=r,
        )
        self.cameras_running = Gauge(
            "vigil_ingest_cameras_running", "Cameras this process runs now", registry=r
        )
        self.camera_restarts = Counter(
            "vigil_ingest_camera_restarts",
            "Cameras restarted because their definition changed",
            camera,
            registry=r,
        )


def serve_metrics(metrics: IngestMetrics, port: int, readiness: Readiness = ready) -> WSGIServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``port`` (0: any free one, logged);
    ``shutdown()`` stops it."""
    return shared.serve_metrics(
        metrics.registry, port, variable="VIGIL_INGEST_METRICS_PORT", readiness=readiness
    )
