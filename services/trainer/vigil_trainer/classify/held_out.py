"""A labeled dataset's held-out frames, scored in capture order by several registry models.

The held-out groups are the ones a classify job with the same ``validation`` and seed holds
out (``classify.data.split_groups``), so models trained on the dataset are judged on frames they
never saw. Frames are decoded once and streamed group by group (a group is a clip or camera,
the unit a motion model keeps state for), so memory holds one batch, never the whole split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import torch
from minio import Minio

from vigil_shared.datasets import DatasetError, DatasetItem, DatasetManifest, read_image
from vigil_shared.schemas.jobs import ClassifySpec
from vigil_shared.vision.preprocess import UndecodableImageError, decode
from vigil_shared.vision.scoring import FrameModel
from vigil_trainer.cancel import JobCancelled
from vigil_trainer.classify.data import split_groups

BATCH = 16


@dataclass(frozen=True)
class HeldOut:
    items: tuple[DatasetItem, ...]
    """Ordered by group, then sequence: each group's frames in capture order."""
    positives: torch.Tensor
    """bool (N,): the item's label is not one of the spec's normal classes."""
    groups: tuple[str, ...]


def held_out(dataset: DatasetManifest, spec: ClassifySpec) -> HeldOut:
    """The held-out items of ``dataset``; ``DatasetError`` when a label is missing or the
    normal classes are not among them."""
    labels = [item.label for item in dataset.items]
    if any(label is None for label in labels):
        missing = sum(label is None for label in labels)
        raise DatasetError(
            f"dataset {dataset.name}: {missing} of {len(labels)} items have no label; "
            "fusion needs every item labeled (its normal frames fit the normalisations)"
        )
    classes = sorted({str(label) for label in labels})
    absent = sorted(set(spec.normal_classes) - set(classes))
    if absent:
        raise DatasetError(
            f"normal_classes {absent} are not labels of dataset {dataset.name} (it has {classes})"
        )
    index = {c: i for i, c in enumerate(classes)}
    chosen = split_groups(
        [item.group for item in dataset.items],
        [index[str(label)] for label in labels],
        spec.validation,
        seed=spec.hyper.seed,
    )
    items = sorted(
        (item for item in dataset.items if item.group in chosen),
        key=lambda item: (item.group, item.sequence if item.sequence is not None else -1, item.key),
    )
    positives = torch.tensor([str(item.label) not in spec.normal_classes for item in items])
    return HeldOut(items=tuple(items), positives=positives, groups=tuple(sorted(chosen)))


def _batches(items: Sequence[DatasetItem]) -> Iterator[Sequence[DatasetItem]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _decode(s3: Minio, bucket: str, item: DatasetItem) -> torch.Tensor:
    try:
        return decode(read_image(s3, bucket, item))
    except UndecodableImageError as exc:
        raise DatasetError(f"{item.source_name or item.key}: {exc}") from exc


def score_held_out(
    models: Mapping[str, FrameModel],
    held: HeldOut,
    *,
    s3: Minio,
    bucket: str,
    progress: Callable[[dict[str, Any]], None],
    should_stop: Callable[[], bool],
) -> dict[str, torch.Tensor]:
    """Every model's anomaly score (float64, in ``held.items`` order), each group scored as one
    camera from its first frame, with its frames' capture times where every frame has one, so
    a motion model sees the clip as inference would."""
    scores: dict[str, list[float]] = {name: [] for name in models}
    done = 0
    for group, members in groupby(held.items, key=lambda item: item.group):
        for model in models.values():
            model.forget(group)
        items = list(members)
        timed = all(item.captured_at is not None for item in items)
        for batch in _batches(items):
            if should_stop():
                raise JobCancelled("cancelled by the operator")
            images = [_decode(s3, bucket, item) for item in batch]
            times = [i.captured_at.timestamp() for i in batch if i.captured_at] if timed else None
            for name, model in models.items():
                scored = model.score_frames([group] * len(images), images, times)
                scores[name].extend(s.score for s in scored)
            done += len(batch)
            progress({"stage": "scoring", "step": done, "total": len(held.items)})
        for model in models.values():
            model.forget(group)
    return {name: torch.tensor(values, dtype=torch.float64) for name, values in scores.items()}
