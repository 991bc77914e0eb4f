"""Loads a registry model for scoring, with no training code: manifest, then verified weights.

``load_frame_model`` is what inference uses: it reads the manifest, refuses an artifact whose
sha256 differs from the manifest's or from the registry's (``IntegrityError``), loads the
safetensors (never pickle) and builds the ``FrameModel`` of the manifest's task. An ``ensemble``
loads each member the same way, refusing one whose manifest or artifact is not the one the
ensemble pinned when it was fitted (re-registered or modified since): its normalisations were
fitted on that model's scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from minio import Minio
from minio.error import S3Error
from safetensors.torch import load as load_safetensors

from vigil_shared.schemas.manifests import EnsembleMember, ModelManifest
from vigil_shared.storage import IntegrityError, StorageError, get_bytes, sha256_hex
from vigil_shared.vision.backbones import FrameEmbedder, load_efficientnet_lite0
from vigil_shared.vision.classifier_model import ArtifactMismatchError, ClassifierFrameModel
from vigil_shared.vision.efficientnet_lite import fused_for_inference
from vigil_shared.vision.knn import KnnScorer
from vigil_shared.vision.preprocess import to_batch
from vigil_shared.vision.score_ensemble import ClassProbabilityEnsemble, ScoreEnsemble, norms_from
from vigil_shared.vision.scoring import FrameModel, FrameScore

BANK_TENSOR = "bank"


class EnsembleMemberError(ValueError):
    """A model that cannot be an ensemble's member (an ensemble itself, or not a classifier
    where probabilities are averaged)."""


def read_manifest(client: Minio, *, bucket: str, model_id: str) -> ModelManifest:
    return read_pinned_manifest(client, bucket=bucket, model_id=model_id)[0]


def read_pinned_manifest(
    client: Minio, *, bucket: str, model_id: str, sha256: str | None = None
) -> tuple[ModelManifest, str]:
    """The manifest and the sha256 of its bytes; with ``sha256``, ``IntegrityError`` when the
    stored manifest is another one."""
    raw = get_bytes(client, bucket, ModelManifest.manifest_key(model_id), sha256=sha256)
    return ModelManifest.model_validate_json(raw), sha256_hex(raw)


def read_artifact(
    client: Minio, *, bucket: str, manifest: ModelManifest
) -> dict[str, torch.Tensor]:
    """The artifact's tensors; ``IntegrityError`` when it is not what the manifest recorded."""
    blob = get_bytes(client, bucket, manifest.artifact_key, sha256=manifest.artifact_sha256)
    return load_safetensors(blob)


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
        batch = to_batch([i.to(self.device) for i in images], self.manifest.own_preprocessing())
        scores = self.scorer.score(self.embedder(batch)).cpu().tolist()
        return [FrameScore(score=s, threshold=self.scorer.threshold) for s in scores]

    @property
    def context_frames(self) -> int:
        return 0

    def forget(self, camera_id: str) -> None:
        """Frames are scored independently."""


def _knn(manifest: ModelManifest, tensors: dict[str, torch.Tensor], device: str) -> KnnFrameModel:
    backbone = load_efficientnet_lite0()
    scorer = KnnScorer(
        bank=tensors[BANK_TENSOR].to(device), k=manifest.k or 1, threshold=manifest.threshold
    )
    embedder = FrameEmbedder(fused_for_inference(backbone.module)).to(device).eval()
    return KnnFrameModel(manifest=manifest, scorer=scorer, embedder=embedder, device=device)


def frame_model_from(
    manifest: ModelManifest, tensors: dict[str, torch.Tensor], device: str
) -> FrameModel:
    """Dispatch on the manifest's task (and, for one_class, on the artifact's layout); an
    ensemble needs its members from S3 (``load_frame_model``)."""
    if manifest.task == "ensemble":
        raise EnsembleMemberError(f"model {manifest.model_id} is an ensemble: use load_frame_model")
    if manifest.task == "classify":
        return ClassifierFrameModel.from_artifact(manifest, tensors, device)
    if BANK_TENSOR in tensors and manifest.k is not None:
        return _knn(manifest, tensors, device)
    from vigil_shared.vision.one_class_model import OneClassFrameModel

    return OneClassFrameModel.from_artifact(manifest, tensors, device)


def load_frame_model(
    client: Minio,
    *,
    bucket: str,
    model_id: str,
    device: str,
    artifact_sha256: str | None = None,
) -> FrameModel:
    """The registry model ``model_id`` ready to score; a tampered artifact is refused.

    ``artifact_sha256`` is the registry's (the database's) copy of the artifact's sha256: the
    manifest in S3 must name it, so an artifact replaced together with its manifest (whoever can
    write the bucket can write both) is refused as well (``IntegrityError``)."""
    manifest = read_manifest(client, bucket=bucket, model_id=model_id)
    if artifact_sha256 is not None and manifest.artifact_sha256 != artifact_sha256:
        raise IntegrityError(
            f"model {model_id}: its manifest in S3 names artifact sha256 "
            f"{manifest.artifact_sha256[:12]}..., the registry recorded {artifact_sha256[:12]}...; "
            "the model's files in S3 were replaced: restore them from backup or register the "
            "model again"
        )
    return model_from_manifest(client, bucket=bucket, manifest=manifest, device=device)


def model_from_manifest(
    client: Minio, *, bucket: str, manifest: ModelManifest, device: str
) -> FrameModel:
    tensors = read_artifact(client, bucket=bucket, manifest=manifest)
    if manifest.task != "ensemble":
        return frame_model_from(manifest, tensors, device)
    assert manifest.ensemble is not None  # the manifest validator requires it for an ensemble
    norms = norms_from(tensors)
    members = manifest.ensemble.members
    if [(n.center, n.scale) for n in norms] != [(m.score_center, m.score_scale) for m in members]:
        raise ArtifactMismatchError(
            f"ensemble {manifest.model_id}: the artifact's normalisations differ from the "
            "manifest's members; the manifest was edited: restore it or refit the ensemble"
        )
    models = [_member(client, bucket, manifest.model_id, m, device) for m in members]
    if manifest.ensemble.method == "score":
        return ScoreEnsemble(
            manifest=manifest, members=models, norms=norms, threshold=manifest.threshold
        )
    classifiers = [m for m in models if isinstance(m, ClassifierFrameModel)]
    if len(classifiers) != len(models):
        raise EnsembleMemberError(
            f"ensemble {manifest.model_id} averages probabilities of classify models only"
        )
    return ClassProbabilityEnsemble(
        manifest=manifest, members=classifiers, threshold=manifest.threshold
    )


def _member(
    client: Minio, bucket: str, ensemble_id: str, member: EnsembleMember, device: str
) -> FrameModel:
    refit = "run its registry_models job again to refit the ensemble on the members as they are"
    try:
        manifest, _ = read_pinned_manifest(
            client, bucket=bucket, model_id=member.model_id, sha256=member.manifest_sha256
        )
    except IntegrityError as exc:
        raise IntegrityError(
            f"ensemble {ensemble_id}: member {member.model_id} is not the model the ensemble "
            f"was fitted on ({exc}); restore that model or {refit}"
        ) from exc
    except S3Error as exc:
        if exc.code != "NoSuchKey":
            raise
        raise StorageError(
            f"ensemble {ensemble_id}: member {member.model_id} is no longer in the registry "
            f"({exc.code}); restore that model or {refit}"
        ) from exc
    if manifest.artifact_sha256 != member.artifact_sha256:
        raise IntegrityError(
            f"ensemble {ensemble_id}: member {member.model_id}'s artifact is "
            f"{manifest.artifact_sha256[:12]}..., the ensemble pinned "
            f"{member.artifact_sha256[:12]}...; {refit}"
        )
    if manifest.task == "ensemble":
        raise EnsembleMemberError(
            f"ensemble {ensemble_id}: member {member.model_id} is an ensemble itself"
        )
    return model_from_manifest(client, bucket=bucket, manifest=manifest, device=device)
