"""Labeled frames as tensors, decoded and resized once, split into train and validation by group.

Holding out whole groups (clips, cameras) is what makes validation honest: neighbouring frames
of one clip are near-duplicates, so a random-frame split would score a memorised frame.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from minio import Minio
from safetensors.torch import load_file, save_file

from vigil_shared.datasets import DatasetError, DatasetManifest, read_image
from vigil_shared.schemas.jobs import ClassifySpec, ValidationSplit
from vigil_shared.vision.preprocess import UndecodableImageError, decode

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class ClassifyData:
    images: torch.Tensor
    """uint8 (N, 3, S, S), already resized to the spec's image size."""
    labels: torch.Tensor
    """int64 (N,), indexes into ``classes``."""
    groups: tuple[str, ...]
    classes: tuple[str, ...]
    train_index: torch.Tensor
    val_index: torch.Tensor
    val_groups: tuple[str, ...]
    dataset_name: str | None = None
    dataset_version: str | None = None
    times: tuple[float | None, ...] = ()
    """Each item's capture time in seconds (None where it has none); empty: none known. A
    motion model scoring the held-out frames measures each group's frame rate from them."""

    @classmethod
    def from_tensors(
        cls,
        *,
        images: torch.Tensor,
        labels: torch.Tensor,
        groups: Sequence[str],
        classes: Sequence[str],
        validation: ValidationSplit | None = None,
        seed: int = 0,
        dataset_name: str | None = None,
        dataset_version: str | None = None,
        times: Sequence[float | None] = (),
    ) -> ClassifyData:
        """In-memory data (benchmarks, tests): images uint8 NCHW of one size, labels int."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise DatasetError(
                f"images must be uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        if not len(images) == len(labels) == len(groups):
            raise DatasetError("images, labels and groups must have the same length")
        if times and len(times) != len(groups):
            raise DatasetError("times, when given, must have one entry per image")
        val_groups = split_groups(
            groups, labels.tolist(), validation or ValidationSplit(), seed=seed
        )
        in_val = torch.tensor([g in val_groups for g in groups], dtype=torch.bool)
        return cls(
            images=images,
            labels=labels.long(),
            groups=tuple(groups),
            classes=tuple(classes),
            train_index=torch.nonzero(~in_val).flatten(),
            val_index=torch.nonzero(in_val).flatten(),
            val_groups=tuple(sorted(val_groups)),
            dataset_name=dataset_name,
            dataset_version=dataset_version,
            times=tuple(times),
        )

    def class_counts(self) -> torch.Tensor:
        """Training frames per class (class weights come from the training split only)."""
        return torch.bincount(self.labels[self.train_index], minlength=len(self.classes))


def split_groups(
    groups: Sequence[str], labels: Sequence[int], split: ValidationSplit, *, seed: int
) -> set[str]:
    """The held-out groups: the named ones, or a seeded draw of whole groups until the held-out
    frames reach ``fraction``; never all groups, never a random frame."""
    distinct = sorted(set(groups))
    if len(distinct) < 2:
        raise DatasetError(
            f"the dataset has {len(distinct)} group(s); a held-out split needs at least 2 "
            "(give frames of different clips or cameras different groups)"
        )
    if split.groups is not None:
        unknown = sorted(set(split.groups) - set(distinct))
        if unknown:
            raise DatasetError(f"validation.groups not in the dataset: {', '.join(unknown)}")
        if set(split.groups) == set(distinct):
            raise DatasetError("validation.groups names every group; leave some for training")
        return set(split.groups)
    size = dict.fromkeys(distinct, 0)
    for g in groups:
        size[g] += 1
    order = list(distinct)
    random.Random(seed).shuffle(order)
    classes_of: dict[str, set[int]] = {g: set() for g in distinct}
    for g, label in zip(groups, labels, strict=True):
        classes_of[g].add(label)
    chosen: set[str] = set()
    target = split.fraction * len(groups)
    for g in order[:-1]:
        if sum(size[c] for c in chosen) >= target:
            break
        if _training_keeps(classes_of, chosen | {g}, classes_of[g]):
            chosen.add(g)
    chosen = _cover_classes(classes_of, chosen, order)
    return chosen or {order[0]}  # no group spares its classes: hold one out regardless


def _training_keeps(classes_of: dict[str, set[int]], held: set[str], labels: set[int]) -> bool:
    """Whether the groups not held out still have frames of each of ``labels``."""
    rest = [classes_of[g] for g in classes_of if g not in held]
    return bool(rest) and all(any(label in r for r in rest) for label in labels)


def _cover_classes(classes_of: dict[str, set[int]], chosen: set[str], order: list[str]) -> set[str]:
    """Add a group for each class validation lacks, if training keeps frames of that class
    (a class seen only in training cannot be measured; one only in validation, not learned)."""
    for label in sorted(set().union(*classes_of.values())):
        if any(label in classes_of[g] for g in chosen):
            continue
        for g in order:
            if (
                g not in chosen
                and label in classes_of[g]
                and _training_keeps(classes_of, chosen | {g}, classes_of[g])
            ):
                chosen.add(g)
                break
    return chosen


def _cache_path(cache_dir: Path, manifest: DatasetManifest, size: int) -> Path:
    return cache_dir / f"{manifest.name}-{manifest.version[:16]}-{size}.safetensors"


def load_classify_data(
    *,
    s3: Minio,
    bucket: str,
    manifest: DatasetManifest,
    spec: ClassifySpec,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> ClassifyData:
    """Every item, sha256-checked, decoded and resized to ``spec.image_size``; with
    ``cache_dir`` the resized tensor is kept on disk, so a resumed job does not decode again."""
    labels_of = [item.label for item in manifest.items]
    unlabeled = sum(1 for label in labels_of if label is None)
    if unlabeled:
        raise DatasetError(
            f"dataset {manifest.name}: {unlabeled} of {len(labels_of)} items have no label; "
            "a classify job needs a label on every item"
        )
    classes = tuple(sorted({str(label) for label in labels_of}))
    missing = sorted(set(spec.normal_classes) - set(classes))
    if missing:
        raise DatasetError(
            f"normal_classes {missing} are not labels of dataset {manifest.name} "
            f"(it has {list(classes)})"
        )
    if len(classes) < 2:
        raise DatasetError(f"dataset {manifest.name} has one class {classes}; classify needs 2+")
    images = _images(s3, bucket, manifest, spec.image_size, cache_dir, progress)
    index = {c: i for i, c in enumerate(classes)}
    return ClassifyData.from_tensors(
        images=images,
        labels=torch.tensor([index[str(label)] for label in labels_of]),
        groups=[item.group for item in manifest.items],
        classes=classes,
        validation=spec.validation,
        seed=spec.hyper.seed,
        dataset_name=manifest.name,
        dataset_version=manifest.version,
        times=[i.captured_at.timestamp() if i.captured_at else None for i in manifest.items],
    )


def _images(
    s3: Minio,
    bucket: str,
    manifest: DatasetManifest,
    size: int,
    cache_dir: Path | None,
    progress: Progress | None,
) -> torch.Tensor:
    cached = _cache_path(cache_dir, manifest, size) if cache_dir is not None else None
    if cached is not None and cached.is_file():
        return load_file(cached)["images"]
    out = torch.empty((len(manifest.items), 3, size, size), dtype=torch.uint8)
    for i, item in enumerate(manifest.items):
        try:
            image = decode(read_image(s3, bucket, item))
        except UndecodableImageError as exc:
            raise DatasetError(f"{item.source_name or item.key}: {exc}") from exc
        out[i] = resize(image, size)
        if progress is not None and (i % 50 == 0 or i == len(manifest.items) - 1):
            progress({"stage": "loading", "step": i + 1, "total": len(manifest.items)})
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        save_file({"images": out}, str(cached))
    return out


def resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (3, H, W) to uint8 (3, size, size), antialiased (frames are usually downscaled)."""
    resized = torch.nn.functional.interpolate(
        image.unsqueeze(0).float(), size=(size, size), mode="bilinear", antialias=True
    )
    return resized.round().clamp(0, 255).to(torch.uint8)[0]
