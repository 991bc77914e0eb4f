"""Prometheus metrics of the scoring loop, in a registry of their own (one per worker)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class InferenceMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.frames = Counter("vigil_inference_frames", "Frames scored", ["camera_id"], registry=r)
        self.events = Counter("vigil_inference_events", "Events emitted", ["camera_id"], registry=r)
        self.dead_letters = Counter(
            "vigil_inference_dead_letters", "Frames sent to the dead-letter topic", registry=r
        )
        self.batch_size = Histogram(
            "vigil_inference_batch_size",
            "Frames per scored batch",
            registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        )
        self.batch_seconds = Histogram(
            "vigil_inference_batch_seconds",
            "Decode + embed + score time per batch",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.latency = Histogram(
            "vigil_inference_frame_to_event_seconds",
            "Capture time to event produced",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.lag = Gauge(
            "vigil_inference_consumer_lag", "Frames waiting in assigned partitions", registry=r
        )
