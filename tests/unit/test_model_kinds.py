"""Model kinds by name, one table for both sides: every manifest task has an entry, every task
a job can train names its trainer module there, and the loader of a task is the one that builds
its model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

import pytest
import torch

from tests.factories import model_manifest as manifest
from tests.unit.test_catalog_and_classifier_model import manifest_for
from tests.unit.test_registry_fusion import member
from tests.unit.test_trainer_kinds import schema_kinds, trainer_modules
from vigil_shared.schemas.manifests import EnsembleMember, EnsembleOf, ModelManifest
from vigil_shared.vision.catalog import build_classifier
from vigil_shared.vision.classifier_model import ClassifierFrameModel
from vigil_shared.vision.inferencer import frame_model_from
from vigil_shared.vision.knn import BANK_TENSOR, KnnFrameModel
from vigil_shared.vision.model_kinds import KINDS
from vigil_shared.vision.one_class_model import OneClassFrameModel
from vigil_shared.vision.score_ensemble import (
    EnsembleMemberError,
    ScoreEnsemble,
    ScoreNorm,
    norm_tensors,
)
from vigil_shared.vision.scoring import FrameModel, FrameScore


def manifest_tasks() -> set[str]:
    return set(get_args(ModelManifest.model_fields["task"].annotation))


def test_every_manifest_task_is_a_kind() -> None:
    assert set(KINDS) == manifest_tasks()


def test_every_trainable_task_is_a_kind_with_a_trainer() -> None:
    trainable = set(schema_kinds())
    assert set(trainer_modules()) == trainable
    assert manifest_tasks() - trainable == {"ensemble"}  # fitted by a classify job's fusion


class ConstantModel:
    def __init__(self, model_id: str) -> None:
        self.manifest = manifest(model_id, task="one_class")

    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore]:
        return [FrameScore(score=2.0, threshold=1.0) for _ in images]

    @property
    def context_frames(self) -> int:
        return 0

    def forget(self, camera_id: str) -> None:
        """Stateless."""


@pytest.mark.parametrize(
    ("task", "tensors", "built_by"),
    [
        ("one_class", {}, OneClassFrameModel),
        ("one_class", {BANK_TENSOR: torch.zeros(2, 8)}, KnnFrameModel),
    ],
)
def test_the_loader_of_a_task_builds_its_kind(
    task: str, tensors: dict[str, torch.Tensor], built_by: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    sentinel = object()

    def from_artifact(manifest: ModelManifest, tensors: object, device: str) -> object:
        built.append(f"{manifest.model_id} on {device}")
        return sentinel

    monkeypatch.setattr(built_by, "from_artifact", from_artifact)
    model = frame_model_from(manifest("m-1", task=task, k=1), tensors, "cpu")
    assert model is sentinel and built == ["m-1 on cpu"]


def test_a_classify_manifest_loads_its_network() -> None:
    net = build_classifier("efficientnet_lite0", n_classes=3).eval()
    model = frame_model_from(manifest_for(), net.state_dict(), "cpu")
    assert isinstance(model, ClassifierFrameModel)
    frames = [torch.randint(0, 255, (3, 40, 56), dtype=torch.uint8)]
    assert 0 <= model.score_frames(["cam"], frames)[0].score <= 1


def test_an_ensemble_loads_its_members_through_the_loader_it_is_given() -> None:
    members = (member("m-a"), member("m-b"))
    ensemble = manifest(
        "m-ens", task="ensemble", ensemble=EnsembleOf(method="score", members=members)
    )
    tensors = norm_tensors([ScoreNorm(center=0.0, scale=1.0)] * 2)
    loaded: list[str] = []

    def load_member(pinned: EnsembleMember) -> FrameModel:
        loaded.append(pinned.model_id)
        return ConstantModel(pinned.model_id)

    model = frame_model_from(ensemble, tensors, "cpu", members=load_member)
    assert isinstance(model, ScoreEnsemble) and loaded == ["m-a", "m-b"]
    assert model.score_frames(["cam"], [torch.zeros(3, 8, 8, dtype=torch.uint8)])[0].score > 2
    with pytest.raises(EnsembleMemberError, match="use load_frame_model"):
        frame_model_from(ensemble, tensors, "cpu")
