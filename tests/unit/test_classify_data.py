"""Validation holds out whole groups (clips, cameras), never random frames."""

from __future__ import annotations

import pytest
import torch

from vigil_shared.datasets import DatasetError
from vigil_shared.schemas.jobs import ValidationSplit
from vigil_trainer.classify.data import ClassifyData, resize, split_groups


def data(groups: list[str], split: ValidationSplit | None = None, seed: int = 0) -> ClassifyData:
    n = len(groups)
    return ClassifyData.from_tensors(
        images=torch.zeros((n, 3, 8, 8), dtype=torch.uint8),
        labels=torch.tensor([i % 2 for i in range(n)]),
        groups=groups,
        classes=("a", "b"),
        validation=split,
        seed=seed,
    )


def test_no_group_is_split_between_training_and_validation() -> None:
    groups = [f"clip{i % 7}" for i in range(70)]
    for seed in range(5):
        d = data(groups, ValidationSplit(fraction=0.3), seed=seed)
        train = {d.groups[int(i)] for i in d.train_index}
        val = {d.groups[int(i)] for i in d.val_index}
        assert train and val and not train & val
        assert set(d.val_groups) == val
        assert len(d.val_index) >= 0.3 * 70


def test_named_groups_are_held_out_exactly_and_bad_names_are_refused() -> None:
    groups = ["a", "a", "b", "b", "c", "c"]
    assert data(groups, ValidationSplit(groups=("c",))).val_groups == ("c",)
    with pytest.raises(DatasetError, match="not in the dataset: z"):
        data(groups, ValidationSplit(groups=("z",)))
    with pytest.raises(DatasetError, match="names every group"):
        data(groups, ValidationSplit(groups=("a", "b", "c")))


def test_one_group_cannot_be_split() -> None:
    with pytest.raises(DatasetError, match="a held-out split needs at least 2"):
        split_groups(["x", "x", "x"], [0, 1, 0], ValidationSplit(), seed=0)


def test_in_memory_frames_must_be_uint8_nchw() -> None:
    with pytest.raises(DatasetError, match="uint8"):
        ClassifyData.from_tensors(
            images=torch.zeros((2, 3, 8, 8)),
            labels=torch.tensor([0, 1]),
            groups=["a", "b"],
            classes=("a", "b"),
        )


def test_resize_keeps_uint8_and_the_requested_size() -> None:
    out = resize(torch.full((3, 48, 64), 200, dtype=torch.uint8), 32)
    assert out.dtype == torch.uint8 and out.shape == (3, 32, 32) and int(out[0, 5, 5]) == 200


def test_validation_gets_every_class_that_training_can_spare() -> None:
    # four normal clips and two clips with anomalies: a plain draw could hold out normals only
    groups = [f"n{i}" for i in range(4) for _ in range(10)] + ["a0"] * 5 + ["a1"] * 5
    labels = [1] * 40 + [0] * 10
    for seed in range(6):
        held = split_groups(groups, labels, ValidationSplit(fraction=0.2), seed=seed)
        assert held & {"a0", "a1"} and held & {"n0", "n1", "n2", "n3"}
        assert {"a0", "a1"} - held  # training keeps an anomalous clip too
