"""Loads a registry model for scoring, with no training code: manifest, then verified weights."""

from __future__ import annotations

from minio import Minio
from safetensors.torch import load as load_safetensors

from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.storage import get_bytes
from vigil_shared.vision.knn import KnnScorer

BANK_TENSOR = "bank"


def load_model(client: Minio, *, bucket: str, model_id: str) -> tuple[ModelManifest, KnnScorer]:
    """Read the manifest and artifact; a tampered artifact raises ``IntegrityError``."""
    raw = get_bytes(client, bucket, ModelManifest.manifest_key(model_id))
    manifest = ModelManifest.model_validate_json(raw)
    blob = get_bytes(client, bucket, manifest.artifact_key, sha256=manifest.artifact_sha256)
    bank = load_safetensors(blob)[BANK_TENSOR]
    return manifest, KnnScorer(bank=bank, k=manifest.k, threshold=manifest.threshold)
