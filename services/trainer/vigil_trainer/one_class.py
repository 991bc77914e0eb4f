"""Fits a one-class (normal-only) model: a kNN bank of pretrained-backbone frame embeddings.

Images are split into a fit part (the bank) and a held-out part whose scores set the threshold
at the spec's target false-positive rate. The split is by sorted key, so frames of one clip
stay together and the threshold is measured on footage the bank has not seen.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass

import torch
from minio import Minio
from safetensors.torch import save as save_safetensors

from vigil_shared.schemas.jobs import OneClassSpec
from vigil_shared.schemas.manifests import Preprocessing, WeightsProvenance
from vigil_shared.storage import get_bytes, list_keys, sha256_hex
from vigil_shared.vision.backbones import FrameEmbedder, load_efficientnet_lite0
from vigil_shared.vision.inferencer import BANK_TENSOR
from vigil_shared.vision.knn import KnnScorer, calibrate_threshold, subsample_bank
from vigil_shared.vision.preprocess import UndecodableImageError, decode, to_batch

IMAGE_SUFFIXES = (".jpg", ".jpeg")
HOLDOUT_FRACTION = 0.2
Progress = Callable[[dict[str, float | str]], None]


class DatasetError(ValueError):
    """The dataset cannot be trained on (empty, unreadable images); the message says which."""


@dataclass(frozen=True)
class FittedModel:
    artifact: bytes
    threshold: float
    dataset_sha256: str
    n_images: int
    metrics: dict[str, float]
    provenance: WeightsProvenance
    preprocessing: Preprocessing


def load_dataset(
    client: Minio, *, bucket: str, spec: OneClassSpec
) -> tuple[list[str], list[bytes], str]:
    """Image keys, their bytes and the dataset hash over sorted (key, sha256) pairs."""
    keys = sorted(
        k
        for k in list_keys(client, bucket, spec.dataset.prefix)
        if k.lower().endswith(IMAGE_SUFFIXES)
    )[: spec.dataset.max_images]
    if len(keys) < 4:
        raise DatasetError(
            f"s3://{bucket}/{spec.dataset.prefix} holds {len(keys)} JPEG images; at least 4 needed"
        )
    blobs = [get_bytes(client, bucket, key) for key in keys]
    digest = hashlib.sha256()
    for key, blob in zip(keys, blobs, strict=True):
        digest.update(f"{key}\0{sha256_hex(blob)}\n".encode())
    return keys, blobs, digest.hexdigest()


@torch.inference_mode()
def embed_all(
    embedder: FrameEmbedder,
    prep: Preprocessing,
    keys: list[str],
    blobs: list[bytes],
    *,
    batch_size: int,
    device: str,
    progress: Progress,
) -> torch.Tensor:
    out: list[torch.Tensor] = []
    for start in range(0, len(blobs), batch_size):
        images = []
        for key, blob in zip(
            keys[start : start + batch_size], blobs[start : start + batch_size], strict=True
        ):
            try:
                images.append(decode(blob).to(device))
            except UndecodableImageError as exc:
                raise DatasetError(f"{key}: {exc}") from exc
        out.append(embedder(to_batch(images, prep)).cpu())
        done = min(start + batch_size, len(blobs))
        progress({"stage": "embedding", "step": done, "total": len(blobs)})
    return torch.cat(out)


def fit_one_class(
    client: Minio,
    *,
    bucket: str,
    spec: OneClassSpec,
    device: str,
    batch_size: int,
    progress: Progress,
) -> FittedModel:
    torch.manual_seed(spec.seed)
    keys, blobs, dataset_sha256 = load_dataset(client, bucket=bucket, spec=spec)
    backbone = load_efficientnet_lite0()
    prep = backbone.preprocessing.model_copy(update={"image_size": spec.image_size})
    embedder = FrameEmbedder(backbone.module).to(device)
    embeddings = embed_all(
        embedder, prep, keys, blobs, batch_size=batch_size, device=device, progress=progress
    )
    n_hold = max(1, int(len(keys) * HOLDOUT_FRACTION))
    fit, held = embeddings[:-n_hold], embeddings[-n_hold:]
    bank = subsample_bank(fit, spec.bank_size, seed=spec.seed).contiguous()
    held_scores = KnnScorer(bank=bank, k=spec.k, threshold=0.0).score(held)
    threshold = calibrate_threshold(held_scores, target_fpr=spec.target_fpr)
    metrics = {
        "n_fit": float(fit.shape[0]),
        "n_holdout": float(n_hold),
        "bank_size": float(bank.shape[0]),
        "holdout_score_mean": float(held_scores.mean()),
        "holdout_fpr": float((held_scores > threshold).float().mean()),
    }
    buffer = io.BytesIO(save_safetensors({BANK_TENSOR: bank}))
    return FittedModel(
        artifact=buffer.getvalue(),
        threshold=threshold,
        dataset_sha256=dataset_sha256,
        n_images=len(keys),
        metrics=metrics,
        provenance=backbone.provenance,
        preprocessing=prep,
    )
