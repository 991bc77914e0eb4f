"""Builds the inference worker from settings: clients and model created once, then injected."""

from __future__ import annotations

import logging

import torch
from prometheus_client import start_http_server

from vigil_inference.embedding import BatchEmbedder
from vigil_inference.metrics import InferenceMetrics
from vigil_inference.scorers import ScorerRouter
from vigil_inference.settings import InferenceSettings
from vigil_inference.worker import Batching, InferenceWorker
from vigil_shared.kafka import ensure_topics, make_consumer, make_producer
from vigil_shared.schemas.events import ModelRef
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.storage import make_s3_client
from vigil_shared.vision.backbones import FrameEmbedder, load_efficientnet_lite0
from vigil_shared.vision.inferencer import load_model
from vigil_shared.vision.knn import KnnScorer

log = logging.getLogger("vigil_inference")


def pick_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def registry_model(settings: InferenceSettings) -> tuple[ModelManifest, KnnScorer] | None:
    if settings.model_id is None:
        return None
    s3 = make_s3_client(settings.common.s3)
    manifest, scorer = load_model(
        s3, bucket=settings.common.s3.models_bucket, model_id=settings.model_id
    )
    log.info("scoring with registry model", extra={"model_id": manifest.model_id})
    return manifest, scorer


def build_worker(
    settings: InferenceSettings, metrics: InferenceMetrics | None = None
) -> InferenceWorker:
    kafka = settings.common.kafka
    topics = kafka.topics
    ensure_topics(kafka, topics.all(), compacted=topics.compacted())
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    backbone = load_efficientnet_lite0()
    model = registry_model(settings)
    # A registry model was fitted at its own input size: score at that size too.
    prep = model[0].preprocessing if model else backbone.preprocessing
    router = ScorerRouter(
        registry_model=(ModelRef(id=model[0].model_id, kind="registry"), model[1])
        if model
        else None,
        warmup_frames=settings.warmup_frames,
        k=settings.k,
        target_fpr=settings.target_fpr,
        threshold_override=settings.threshold,
    )
    embedder = BatchEmbedder(
        FrameEmbedder(backbone.module),
        prep,
        device=pick_device(settings.device),
        amp=settings.amp,
        compile_model=settings.compile,
    )
    metrics = metrics or InferenceMetrics()
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, registry=metrics.registry)
    return InferenceWorker(
        consumer=make_consumer(
            kafka, topics.frames, group_id=settings.group_id, max_poll_records=settings.batch_size
        ),
        producer=make_producer(kafka),
        embedder=embedder,
        router=router,
        topics=topics,
        batching=Batching(
            max_frames=settings.batch_size,
            max_wait_s=settings.max_wait_ms / 1000,
            poll_timeout_ms=settings.poll_timeout_ms,
        ),
        metrics=metrics,
    )
