"""Builds the inference worker from settings: clients and model created once, then injected."""

from __future__ import annotations

import logging

import torch

from vigil_inference.scorers import ScorerRouter
from vigil_inference.settings import InferenceSettings
from vigil_inference.worker import FrameScorer, InferenceWorker
from vigil_shared.kafka import ensure_topics, make_consumer, make_producer
from vigil_shared.schemas.events import ModelRef
from vigil_shared.storage import make_s3_client
from vigil_shared.vision.backbones import FrameEmbedder, load_efficientnet_lite0
from vigil_shared.vision.inferencer import load_model
from vigil_shared.vision.knn import KnnScorer

log = logging.getLogger("vigil_inference")


def pick_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def registry_model(settings: InferenceSettings) -> tuple[ModelRef, KnnScorer] | None:
    if settings.model_id is None:
        return None
    s3 = make_s3_client(settings.common.s3)
    manifest, scorer = load_model(
        s3, bucket=settings.common.s3.models_bucket, model_id=settings.model_id
    )
    log.info("scoring with registry model", extra={"model_id": manifest.model_id})
    return ModelRef(id=manifest.model_id, kind="registry"), scorer


def build_worker(settings: InferenceSettings) -> InferenceWorker:
    kafka = settings.common.kafka
    topics = kafka.topics
    ensure_topics(kafka, topics.all())
    backbone = load_efficientnet_lite0()
    router = ScorerRouter(
        registry_model=registry_model(settings),
        warmup_frames=settings.warmup_frames,
        k=settings.k,
        target_fpr=settings.target_fpr,
        threshold_override=settings.threshold,
    )
    device = pick_device(settings.device)
    scorer = FrameScorer(FrameEmbedder(backbone.module), backbone.preprocessing, router, device)
    return InferenceWorker(
        consumer=make_consumer(kafka, topics.frames, group_id=settings.group_id),
        producer=make_producer(kafka),
        scorer=scorer,
        topics=topics,
        batch_size=settings.batch_size,
        poll_timeout_ms=settings.poll_timeout_ms,
    )
