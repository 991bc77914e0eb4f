"""Registry models for inference tests: a kNN bank of the test scene's frames, as stored.

The artifact and manifest are written the way ``vigil_shared.vision.inferencer`` reads them, so
inference tests exercise the real loading path without running a training job.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import torch
from minio import Minio
from safetensors.torch import save as save_safetensors

from tests.factories import scene_jpeg
from vigil_shared.datasets import DatasetRef
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.storage import put_bytes, sha256_hex
from vigil_shared.vision.backbones import FrameEmbedder, load_efficientnet_lite0
from vigil_shared.vision.knn import BANK_TENSOR
from vigil_shared.vision.preprocess import decode, to_batch

IMAGE_SIZE = 96


def scene_bank(frames: int = 12) -> tuple[bytes, ModelManifest]:
    backbone = load_efficientnet_lite0()
    prep = backbone.preprocessing.model_copy(update={"image_size": IMAGE_SIZE})
    with torch.inference_mode():
        images = [decode(scene_jpeg(step)) for step in range(frames)]
        bank = FrameEmbedder(backbone.module)(to_batch(images, prep)).contiguous()
    artifact = save_safetensors({BANK_TENSOR: bank})
    spec = OneClassSpec(name="inference-test", dataset=DatasetRef(name="scene"))
    template = ModelManifest(
        model_id="template",
        name=spec.name,
        task="one_class",
        architecture="efficientnet_lite0+knn",
        backbone_weights=backbone.provenance,
        preprocessing=prep,
        threshold=1.0,
        k=1,
        artifact_key="",
        artifact_sha256=sha256_hex(artifact),
        dataset_sha256=sha256_hex(b"scene"),
        n_images=frames,
        spec=spec,
        metrics={},
        code_version="test",
        created_at=datetime.now(UTC),
    )
    return artifact, template


def registry_models(s3: Minio, bucket: str, *, count: int = 1) -> list[str]:
    """``count`` models (the same bank under different ids) stored in ``bucket``; their ids."""
    artifact, template = scene_bank()
    ids = []
    for _ in range(count):
        model_id = f"m-test-{uuid.uuid4().hex[:12]}"
        key = ModelManifest.artifact_key_for(model_id)
        put_bytes(s3, bucket, key, artifact, "application/octet-stream")
        manifest = template.model_copy(update={"model_id": model_id, "artifact_key": key})
        body = manifest.model_dump_json(by_alias=True).encode()
        put_bytes(s3, bucket, ModelManifest.manifest_key(model_id), body, "application/json")
        ids.append(model_id)
    return ids
