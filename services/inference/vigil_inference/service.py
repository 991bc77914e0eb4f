"""Builds the inference worker from settings: clients and models created once, then injected."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from kafka import KafkaProducer
from minio import Minio

from vigil_inference.embedding import BatchEmbedder
from vigil_inference.health import ReportStatus, ScoringHealth
from vigil_inference.metrics import InferenceMetrics
from vigil_inference.models import (
    WARMUP,
    Deferred,
    FrameScorer,
    ScoringModel,
    ThresholdOverride,
    WarmupModel,
)
from vigil_inference.routing import AssignmentFollower, ModelLoader, ModelRouter
from vigil_inference.scoring import BatchScorer
from vigil_inference.settings import InferenceSettings
from vigil_inference.snapshots import SnapshotStore
from vigil_inference.worker import Batching, InferenceWorker
from vigil_shared.event_lifecycle import Debounce, EventTracker, InferenceDebounce
from vigil_shared.kafka import PartitionChanges, ensure_topics, make_consumer, make_producer
from vigil_shared.metrics import serve_metrics
from vigil_shared.schemas.events import ModelRef
from vigil_shared.schemas.scoring_status import ScoringStatus
from vigil_shared.storage import ensure_buckets, make_s3_client
from vigil_shared.vision.backbones import (
    LITE0_PREPROCESSING,
    FrameEmbedder,
    load_efficientnet_lite0,
)
from vigil_shared.vision.device import pick_device, set_cpu_threads
from vigil_shared.vision.efficientnet_lite import fused_for_inference
from vigil_shared.vision.inferencer import load_frame_model

log = logging.getLogger("vigil_inference")


def scoring_thread_count(settings: InferenceSettings, device: str) -> int:
    """One per available core on a CPU; one on CUDA, where the batch is the parallelism."""
    if settings.scoring_threads is not None:
        return settings.scoring_threads
    return 1 if device.startswith("cuda") else len(os.sched_getaffinity(0))


def warmup_model(settings: InferenceSettings, device: str, *, max_batch: int = 0) -> WarmupModel:
    """The built-in scorer, its kernels primed for batches up to ``max_batch`` frames."""
    prep = LITE0_PREPROCESSING.model_copy(update={"image_size": settings.warmup_image_size})
    embedder = BatchEmbedder(
        FrameEmbedder(fused_for_inference(load_efficientnet_lite0().module)),
        prep,
        device=device,
        amp=settings.amp,
        compile_model=settings.compile,
    )
    embedder.prime(max_batch)
    return WarmupModel(
        embedder,
        frames=settings.warmup_frames,
        k=settings.k,
        target_fpr=settings.target_fpr,
        threshold=settings.threshold,
    )


def registry_loader(s3: Minio, settings: InferenceSettings, device: str) -> ModelLoader:
    def load(model_id: str, artifact_sha256: str | None) -> ScoringModel:
        loaded = load_frame_model(
            s3,
            bucket=settings.common.s3.models_bucket,
            model_id=model_id,
            device=device,
            artifact_sha256=artifact_sha256,
        )
        model: FrameScorer = loaded
        debounce = None
        if settings.threshold is not None:  # the operator's threshold, on the worker's debounce
            model = ThresholdOverride(model, settings.threshold)
        else:
            debounce = served_debounce(model_id, loaded.manifest.metrics, settings.events)
        ref = ModelRef(id=model_id, kind="registry")
        return ScoringModel(ref, model, artifact_sha256, debounce)

    return load


def served_debounce(
    model_id: str, metrics: Mapping[str, float], events: InferenceDebounce
) -> Debounce | None:
    """The debounce a model's events open and close on where it is not the worker's
    (``for_model``), logged; a model calibrated for another debounce and served on the worker's
    (``follow_model`` off) is logged as a warning: its expected false alarms do not hold."""
    served, calibrated = events.for_model(metrics), Debounce.calibrated(metrics)
    extra = {"model_id": model_id}
    own = events.lifecycle()
    if served is not None:
        log.info(
            f"model's events follow the debounce it was calibrated for: {served} (the "
            f"worker's VIGIL_INFERENCE_EVENT_*: {events.own()})",
            extra=extra,
        )
    elif calibrated is not None and calibrated.applied_to(own) != own:
        log.warning(
            f"model calibrated for events on {calibrated}, served on {events.own()} "
            "(VIGIL_INFERENCE_EVENT_FOLLOW_MODEL=false): its expected false alarms per hour "
            "do not hold",
            extra=extra,
        )
    return served


def scoring_status_sender(producer: KafkaProducer, topic: str) -> ReportStatus:
    """Sends a camera's scoring status on the worker's producer (flushed with each batch)."""

    def send(status: ScoringStatus) -> None:
        producer.send(topic, key=status.kafka_key(), value=status.to_json_bytes())

    return send


def build_router(
    settings: InferenceSettings,
    s3: Minio,
    metrics: InferenceMetrics,
    device: str,
    *,
    scoring_threads: int = 1,
    health: ScoringHealth | None = None,
) -> ModelRouter:
    loader = registry_loader(s3, settings, device)
    # The static default must load: a typo in VIGIL_INFERENCE_MODEL_ID stops the start-up.
    # (Its artifact is checked against its manifest only: the registry's sha256 comes with
    # assignments, and inference does not read the database.)
    preloaded = [loader(settings.model_id, None)] if settings.model_id else []
    # A scoring thread's share of a full batch (whole cameras: a little more).
    max_batch = -(-settings.batch_size // scoring_threads) + 1
    return ModelRouter(
        loader=loader,
        warmup=ScoringModel(
            WARMUP, Deferred(lambda: warmup_model(settings, device, max_batch=max_batch))
        ),
        default_model_id=settings.model_id,
        cache_size=settings.model_cache_size,
        metrics=metrics,
        preloaded=preloaded,
        health=health,
    )


def build_worker(
    settings: InferenceSettings, metrics: InferenceMetrics | None = None
) -> InferenceWorker:
    kafka = settings.common.kafka
    topics = kafka.topics
    ensure_topics(kafka, topics.all(), compacted=topics.compacted())
    device = pick_device(settings.device)
    scoring_threads = scoring_thread_count(settings, device)
    threads = settings.threads or (1 if scoring_threads > 1 else None)
    if threads is not None:
        set_cpu_threads(threads)
    s3 = make_s3_client(settings.common.s3)
    ensure_buckets(s3, settings.common.s3)
    metrics = metrics or InferenceMetrics()
    producer = make_producer(kafka)
    health = ScoringHealth(
        metrics=metrics, report=scoring_status_sender(producer, topics.scoring_status)
    )
    router = build_router(
        settings, s3, metrics, device, scoring_threads=scoring_threads, health=health
    )
    assignments = AssignmentFollower(
        make_consumer(kafka, group_id=None), topics.model_assignments, metrics
    )
    router.apply(assignments.bootstrap())
    snapshots = (
        SnapshotStore(
            s3, bucket=settings.common.s3.snapshots_bucket, workers=settings.snapshot_workers
        )
        if settings.snapshots
        else None
    )
    if settings.metrics_port is not None:
        serve_metrics(
            metrics.registry,
            settings.metrics_port,
            variable="VIGIL_INFERENCE_METRICS_PORT",
            readiness=health.readiness,
        )
    partitions = PartitionChanges()
    return InferenceWorker(
        consumer=make_consumer(
            kafka,
            topics.frames,
            group_id=settings.group_id,
            listener=partitions,
            max_poll_records=settings.batch_size,
        ),
        partitions=partitions,
        producer=producer,
        router=router,
        assignments=assignments,
        tracker=EventTracker(settings.events.lifecycle()),
        snapshots=snapshots,
        topics=topics,
        batching=Batching(
            max_frames=settings.batch_size,
            max_wait_s=settings.max_wait_ms / 1000,
            poll_timeout_ms=settings.poll_timeout_ms,
        ),
        scorer=BatchScorer(device=device, metrics=metrics, threads=scoring_threads),
        metrics=metrics,
    )
