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
        self.events = Counter(
            "vigil_inference_event_messages",
            "Event messages produced, by lifecycle phase",
            ["camera_id", "phase"],
            registry=r,
        )
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
            "Capture time of a message's frame to the message produced",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.lag = Gauge(
            "vigil_inference_consumer_lag", "Frames waiting in assigned partitions", registry=r
        )
        self.open_events = Gauge(
            "vigil_inference_open_events", "Cameras with an event open now", registry=r
        )
        self.replayed_frames = Counter(
            "vigil_inference_replayed_frames",
            "Frames read again after a restart, rebalance or Kafka failure that were skipped "
            "(stage=skipped) or scored only to rebuild their model's state (stage=context)",
            ["stage"],
            registry=r,
        )
        self.snapshot_seconds = Histogram(
            "vigil_inference_snapshot_wait_seconds",
            "Time a batch waited for its snapshot uploads",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.model_swaps = Counter(
            "vigil_inference_model_swaps",
            "Cameras switched to another production model",
            registry=r,
        )
        self.model_load_failures = Counter(
            "vigil_inference_model_load_failures", "Models that could not be loaded", registry=r
        )
        self.model_unloadable = Gauge(
            "vigil_inference_model_unloadable",
            "1 for each assigned model that cannot be loaded now (tampered, missing)",
            ["model_id"],
            registry=r,
        )
        self.cameras_on_fallback = Gauge(
            "vigil_inference_cameras_on_fallback",
            "Cameras scored by another model than the one assigned to them, which cannot load",
            registry=r,
        )
        self.model_load_seconds = Histogram(
            "vigil_inference_model_load_seconds", "Time to load a registry model", registry=r
        )
        self.bad_assignments = Counter(
            "vigil_inference_bad_assignments", "Invalid model-assignment records", registry=r
        )
        self.shadow_scores = Histogram(
            "vigil_inference_shadow_score",
            "Scores of shadow models, relative to their threshold (score / threshold)",
            ["model_id"],
            registry=r,
            buckets=(0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0),
        )
        self.shadow_frames = Counter(
            "vigil_inference_shadow_frames",
            "Frames scored by a shadow model, by whether it and production reached threshold",
            ["model_id", "shadow", "production"],
            registry=r,
        )
