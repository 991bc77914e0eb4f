"""Loads a registry model for scoring, with no training code: manifest, then verified weights.

``load_frame_model`` is what inference uses: it reads the manifest, refuses an artifact whose
sha256 differs from the manifest's or from the registry's (``IntegrityError``), loads the
safetensors (never pickle) and builds the ``FrameModel`` of the manifest's task with that kind's
loader (``vision.model_kinds``). An ``ensemble`` loads each member the same way, refusing one
whose manifest or artifact is not the one the ensemble pinned when it was fitted (re-registered
or modified since): its normalisations were fitted on that model's scores.
"""

from __future__ import annotations

import torch
from minio import Minio
from minio.error import S3Error
from safetensors.torch import load as load_safetensors

from vigil_shared.schemas.manifests import EnsembleMember, ModelManifest
from vigil_shared.storage import IntegrityError, StorageError, get_bytes, sha256_hex
from vigil_shared.vision.model_kinds import KINDS, MemberLoader
from vigil_shared.vision.score_ensemble import EnsembleMemberError
from vigil_shared.vision.scoring import FrameModel


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


def frame_model_from(
    manifest: ModelManifest,
    tensors: dict[str, torch.Tensor],
    device: str,
    *,
    members: MemberLoader | None = None,
) -> FrameModel:
    """The loader of the manifest's task (``model_kinds.KINDS``) on verified tensors; a model
    built on other registry models (an ensemble) needs ``members`` (``load_frame_model``)."""

    def no_members(member: EnsembleMember) -> FrameModel:
        raise EnsembleMemberError(
            f"model {manifest.model_id} is an {manifest.task} of registry models: "
            "use load_frame_model"
        )

    load = KINDS[manifest.task].load
    return load(manifest=manifest, tensors=tensors, device=device, members=members or no_members)


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

    def member(pinned: EnsembleMember) -> FrameModel:
        return _member(client, bucket, manifest.model_id, pinned, device)

    return frame_model_from(manifest, tensors, device, members=member)


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
