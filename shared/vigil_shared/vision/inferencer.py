"""Loads a registry model for scoring, with no training code: manifest, then verified weights.

``load_frame_model`` is what inference uses: it reads the manifest, refuses an artifact whose
sha256 differs from the manifest's (``IntegrityError``), loads the safetensors (never pickle)
and builds the ``FrameModel`` of the manifest's task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from minio import Minio
from safetensors.torch import load as load_safetensors

from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.storage import get_bytes
from vigil_shared.vision.backbones import FrameEmbedder, load_efficientnet_lite0
from vigil_shared.vision.classifier_model import ClassifierFrameModel
from vigil_shared.vision.knn import KnnScorer
from vigil_shared.vision.preprocess import to_batch
from vigil_shared.vision.scoring import FrameModel, FrameScore

BANK_TENSOR = "bank"


def read_manifest(client: Minio, *, bucket: str, model_id: str) -> ModelManifest:
    raw = get_bytes(client, bucket, ModelManifest.manifest_key(model_id))
    return ModelManifest.model_validate_json(raw)


def read_artifact(
    client: Minio, *, bucket: str, manifest: ModelManifest
) -> dict[str, torch.Tensor]:
    """The artifact's tensors; ``IntegrityError`` when it is not what the manifest recorded."""
    blob = get_bytes(client, bucket, manifest.artifact_key, sha256=manifest.artifact_sha256)
    return load_safetensors(blob)


def load_model(client: Minio, *, bucket: str, model_id: str) -> tuple[ModelManifest, KnnScorer]:
    """A legacy kNN one_class model as its manifest and scorer (``load_frame_model`` wraps it)."""
    manifest = read_manifest(client, bucket=bucket, model_id=model_id)
    bank = read_artifact(client, bucket=bucket, manifest=manifest)[BANK_TENSOR]
    return manifest, KnnScorer(bank=bank, k=manifest.k or 1, threshold=manifest.threshold)


@dataclass
class KnnFrameModel:
    """The first one_class models (a bank of global Lite0 embeddings) as a ``FrameModel``."""

    manifest: ModelManifest
    scorer: KnnScorer
    embedder: FrameEmbedder
    device: str

    @torch.inference_mode()
    def score_frames(
        self, camera_ids: Sequence[str], images: Sequence[torch.Tensor]
    ) -> list[FrameScore]:
        if not images:
            return []
        batch = to_batch([i.to(self.device) for i in images], self.manifest.preprocessing)
        scores = self.scorer.score(self.embedder(batch)).cpu().tolist()
        return [FrameScore(score=s, threshold=self.scorer.threshold) for s in scores]

    def forget(self, camera_id: str) -> None:
        """Frames are scored independently."""


def _knn(manifest: ModelManifest, tensors: dict[str, torch.Tensor], device: str) -> KnnFrameModel:
    backbone = load_efficientnet_lite0()
    scorer = KnnScorer(
        bank=tensors[BANK_TENSOR].to(device), k=manifest.k or 1, threshold=manifest.threshold
    )
    embedder = FrameEmbedder(backbone.module).to(device).eval()
    return KnnFrameModel(manifest=manifest, scorer=scorer, embedder=embedder, device=device)


def frame_model_from(
    manifest: ModelManifest, tensors: dict[str, torch.Tensor], device: str
) -> FrameModel:
    """Dispatch on the manifest's task (and, for one_class, on the artifact's layout)."""
    if manifest.task == "classify":
        return ClassifierFrameModel.from_artifact(manifest, tensors, device)
    if BANK_TENSOR in tensors and manifest.k is not None:
        return _knn(manifest, tensors, device)
    from vigil_shared.vision.one_class_model import OneClassFrameModel

    return OneClassFrameModel.from_artifact(manifest, tensors, device)


def load_frame_model(client: Minio, *, bucket: str, model_id: str, device: str) -> FrameModel:
    """The registry model ``model_id`` ready to score; a tampered artifact is refused."""
    manifest = read_manifest(client, bucket=bucket, model_id=model_id)
    tensors = read_artifact(client, bucket=bucket, manifest=manifest)
    return frame_model_from(manifest, tensors, device)
