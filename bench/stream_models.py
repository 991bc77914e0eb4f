"""The models ``bench/stream.py`` streams with: the built-in warm-up model, or a one_class model
fitted on UCSD Ped2's training clips and stored in the registry bucket as a training job would,
so that the worker loads it the way it loads any registry model (``VIGIL_INFERENCE_MODEL_ID``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from bench.footage import Footage
from bench.ped2_one_class import fit_manifest, training_dataset
from vigil_shared.datasets import DatasetRef
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import S3Settings
from vigil_shared.storage import ensure_buckets, make_s3_client, put_bytes
from vigil_trainer.one_class import fit_one_class

MODELS = ("warmup", "one_class")


@dataclass(frozen=True)
class StreamModel:
    """What the worker scores with: ``model_id`` None is the warm-up model."""

    name: str
    model_id: str | None = None
    fit_s: float | None = None
    spec: dict[str, Any] | None = None  # the one_class spec's overrides, if any

    def environment(self) -> dict[str, str]:
        return {"VIGIL_INFERENCE_MODEL_ID": self.model_id} if self.model_id else {}


def one_class_on_ped2(
    *, train_clips: int, device: str, overrides: dict[str, Any] | None = None
) -> StreamModel:
    """Fit one_class (the default spec, with ``overrides``) on the first ``train_clips`` Ped2
    training clips and register its artifact and manifest in the models bucket; the fit is
    timed."""
    s3_settings = S3Settings()
    clips = tuple(f"Train{i:03d}" for i in range(1, train_clips + 1))
    dataset = training_dataset(Footage.ped2(), clips, s3_settings)
    spec = OneClassSpec.model_validate(
        {"name": "ped2", "dataset": DatasetRef(name=dataset.name, version=dataset.version)}
        | (overrides or {})
    )
    s3 = make_s3_client(s3_settings)
    started = time.perf_counter()
    fit = fit_one_class(
        s3=s3,
        bucket=s3_settings.datasets_bucket,
        spec=spec,
        dataset=dataset,
        device=device,
        batch_size=16,
        progress=lambda _: None,
        should_stop=lambda: False,
    )
    fit_s = time.perf_counter() - started
    model_id = f"bench-stream-{uuid.uuid4().hex[:8]}"
    manifest = fit_manifest(fit, model_id)
    ensure_buckets(s3, s3_settings)
    bucket = s3_settings.models_bucket
    put_bytes(s3, bucket, manifest.artifact_key, fit.artifact, "application/octet-stream")
    body = manifest.model_dump_json(by_alias=True).encode()
    put_bytes(s3, bucket, ModelManifest.manifest_key(model_id), body, "application/json")
    return StreamModel("one_class", model_id, round(fit_s, 1), overrides)
