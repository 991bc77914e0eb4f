"""Ensembles of registry models, the pure parts: which members can be averaged, the manifest
kind, the held-out split, the fit, and the probability ensemble served from its members."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
import torch
from pydantic import ValidationError

from tests.factories import SHA, model_manifest
from tests.unit.classify_support import tiny_spec
from vigil_shared.datasets import DatasetError, DatasetItem, DatasetManifest
from vigil_shared.schemas.manifests import (
    EnsembleMember,
    EnsembleOf,
    ModelManifest,
    ensemble_problem,
)
from vigil_shared.vision.score_ensemble import (
    ClassProbabilityEnsemble,
    ScoreNorm,
    norm_tensors,
    norms_from,
)
from vigil_trainer.classify.held_out import HeldOut, held_out
from vigil_trainer.classify.registry_fusion import fit_ensemble


def member(model_id: str) -> EnsembleMember:
    return EnsembleMember(
        model_id=model_id,
        task="classify",
        manifest_sha256=SHA,
        artifact_sha256=SHA,
        score_center=0.0,
        score_scale=1.0,
    )


def test_only_models_that_can_be_averaged_as_asked_are_accepted() -> None:
    a, b = model_manifest("m-a"), model_manifest("m-b")
    knn = model_manifest("m-knn", task="one_class")
    other = model_manifest("m-other", classes=("intrusion", "normal"))
    nested = model_manifest(
        "m-ens",
        task="ensemble",
        ensemble=EnsembleOf(method="score", members=(member("m-a"), member("m-b"))),
    )
    assert ensemble_problem("probability", [a, b]) is None
    assert ensemble_problem("score", [a, knn, other]) is None
    assert "more than once" in str(ensemble_problem("score", [a, a]))
    assert "cannot be a member" in str(ensemble_problem("score", [a, nested]))
    assert "m-knn is one_class" in str(ensemble_problem("probability", [a, knn]))
    problem = str(ensemble_problem("probability", [a, other]))
    assert "one class list" in problem and "m-other: ['intrusion', 'normal']" in problem


def test_a_registry_models_spec_with_a_search_is_refused() -> None:
    fusion = {"kind": "registry_models", "model_ids": ["m-a", "m-b"]}
    assert tiny_spec(fusion=fusion).fusion is not None
    space = {"hyper.lr": {"type": "float", "low": 1e-4, "high": 1e-2}}
    with pytest.raises(ValidationError, match="trains nothing: remove search"):
        tiny_spec(fusion=fusion, search={"trials": 2, "space": space})


def test_an_ensemble_manifest_names_members_and_has_no_weights_of_its_own() -> None:
    pair = EnsembleOf(method="score", members=(member("m-a"), member("m-b")))
    ensemble = model_manifest("m-ens", task="ensemble", ensemble=pair)
    again = ModelManifest.model_validate_json(ensemble.model_dump_json(by_alias=True))
    assert again.ensemble == pair and again.backbone_weights is None
    with pytest.raises(TypeError, match="is an ensemble"):
        ensemble.own_preprocessing()
    with pytest.raises(ValidationError, match="names its members"):
        model_manifest("m-ens", task="ensemble")
    with pytest.raises(ValidationError, match="names its members"):
        model_manifest("m-a", ensemble=pair)
    with pytest.raises(ValidationError, match="needs backbone_weights"):
        model_manifest("m-a", backbone_weights=None)
    with pytest.raises(ValidationError, match="at least 2"):
        EnsembleOf(method="score", members=(member("m-a"),))


def test_normalisations_round_trip_through_the_artifact_tensors() -> None:
    norms = [ScoreNorm(center=0.1, scale=2.5), ScoreNorm(center=-3.0, scale=1e-6)]
    assert norms_from(norm_tensors(norms)) == norms


def item(i: int, group: str, label: str | None, sequence: int) -> DatasetItem:
    return DatasetItem(key=f"k{i}", sha256=SHA, label=label, group=group, sequence=sequence)


def dataset(items: Sequence[DatasetItem]) -> DatasetManifest:
    return DatasetManifest(
        name="d", version=SHA, source="upload", created_at=datetime.now(UTC), items=tuple(items)
    )


def test_the_held_out_frames_are_named_groups_in_capture_order() -> None:
    items = [item(0, "b", "normal", 2), item(1, "a", "normal", 0), item(2, "b", "abnormal", 1)]
    items += [item(3, "a", "abnormal", 1), item(4, "c", "normal", 0)]
    spec = tiny_spec(validation={"groups": ["b", "c"]})
    held = held_out(dataset(items), spec)
    assert [i.key for i in held.items] == ["k2", "k0", "k4"]
    assert held.positives.tolist() == [True, False, False] and held.groups == ("b", "c")
    with pytest.raises(DatasetError, match="1 of 6 items have no label"):
        held_out(dataset([*items, item(5, "c", None, 1)]), spec)
    with pytest.raises(DatasetError, match="normal_classes"):
        held_out(dataset(items), tiny_spec(normal_classes=["calm"]))


def test_complementary_members_fuse_into_an_ensemble_better_than_either() -> None:
    # Each member misses one of the two abnormal frames; normalised and averaged, none is missed.
    a = torch.tensor([0.0, 1.0, 0.0, 1.0, 5.0, 0.5], dtype=torch.float64)
    b = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.5, 5.0], dtype=torch.float64)
    positives = torch.tensor([False] * 4 + [True] * 2)
    items = tuple(item(i, "g", "abnormal" if p else "normal", i) for i, p in enumerate(positives))
    held = HeldOut(items=items, positives=positives, groups=("g",))
    fitted = fit_ensemble([a, b], held, method="score")
    assert [m["auroc"] for m in fitted.member_metrics] == [0.75, 0.75]
    assert fitted.metrics["auroc"] == 1.0 and fitted.metrics["best_member_auroc"] == 0.75
    assert fitted.metrics["f1"] == 1.0 and fitted.metrics["threshold_calibrated"] == 1.0
    assert fitted.evaluation.confusion_matrix == ((4, 0), (0, 2))
    assert fitted.threshold >= 0.0


class FixedClassifier:
    """Stands in for a ``ClassifierFrameModel``: the same probabilities for every frame."""

    def __init__(self, model_id: str, probabilities: list[float], classes: tuple[str, ...]):
        self.manifest = model_manifest(model_id, classes=classes)
        self.p = torch.tensor(probabilities)

    def probabilities(self, images: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(images)
        heat = torch.arange(4.0).reshape(1, 2, 2).repeat(n, 1, 1) * float(self.p[0])
        return self.p.repeat(n, 1), heat


def test_a_probability_ensemble_scores_and_labels_by_the_mean_probabilities() -> None:
    classes = ("abnormal", "normal")
    ensemble_manifest = model_manifest(
        "m-ens",
        task="ensemble",
        classes=classes,
        ensemble=EnsembleOf(method="probability", members=(member("m-a"), member("m-b"))),
    )
    members = [
        FixedClassifier("m-a", [0.9, 0.1], classes),
        FixedClassifier("m-b", [0.2, 0.8], classes),
    ]
    model = ClassProbabilityEnsemble(manifest=ensemble_manifest, members=members, threshold=0.5)
    [scored] = model.score_frames(["cam"], [torch.zeros((3, 8, 8), dtype=torch.uint8)])
    assert scored.score == pytest.approx(0.55) and scored.label == "abnormal"
    assert scored.heatmap is not None and float(scored.heatmap.max()) == pytest.approx(0.55)
    other = FixedClassifier("m-c", [0.5, 0.5], ("intrusion", "normal"))
    with pytest.raises(ValueError, match="has classes"):
        ClassProbabilityEnsemble(
            manifest=ensemble_manifest, members=[members[0], other], threshold=0.5
        )
