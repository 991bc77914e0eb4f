"""Fusion: ensembles of outputs and averaged weights, on small networks built here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import torch
from torch import nn

from vigil_shared.datasets import DatasetRef
from vigil_shared.schemas.manifests import ModelManifest, WeightsProvenance
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.vision.backbones import LITE0_PREPROCESSING
from vigil_shared.vision.score_ensemble import ScoreEnsemble, fit_score_norm
from vigil_shared.vision.scoring import FrameScore
from vigil_trainer.classify.fusion import (
    Candidate,
    FusionError,
    ProbabilityEnsemble,
    StateDict,
    Trial,
    average_probabilities,
    ensemble_state_dict,
    ensemble_trials,
    predict_probabilities,
    split_ensemble_state_dict,
    uniform_soup,
    weight_average,
)
from vigil_trainer.classify.score_fusion import (
    average_scores,
    calibrate_threshold,
    fit_score_fusion,
    scores_at,
)


def small_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )


def frames(n: int = 6) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )


def test_an_ensemble_of_identical_models_equals_the_single_model() -> None:
    net = small_net(0).eval()
    images = frames()
    single = predict_probabilities(net, images, mean=(0.5,) * 3, std=(0.5,) * 3)
    copies = [small_net(0).eval() for _ in range(3)]
    ensemble = ProbabilityEnsemble(copies)
    with torch.inference_mode():
        fused = ensemble((images.float() / 255 - 0.5) / 0.5)
    torch.testing.assert_close(fused, single)
    torch.testing.assert_close(average_probabilities([single, single, single]), single)


def test_probability_averaging_is_the_mean_and_refuses_other_class_lists() -> None:
    a = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    b = torch.tensor([[0.5, 0.5], [0.4, 0.6]])
    torch.testing.assert_close(
        average_probabilities([a, b]), torch.tensor([[0.7, 0.3], [0.3, 0.7]])
    )
    with pytest.raises(FusionError, match="disagree"):
        average_probabilities([a, torch.ones(2, 3) / 3])


def test_score_averaging_normalises_each_member_on_validation_normals() -> None:
    # Member b scores on a 100x larger scale; after normalisation both count equally, and the
    # mean (1.0 for both frames) goes through softplus so no served score is negative.
    normal_a, normal_b = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([10.0, 20.0, 30.0])
    norms = [fit_score_norm(normal_a), fit_score_norm(normal_b)]
    fused = average_scores([torch.tensor([0.4, 0.2]), torch.tensor([20.0, 40.0])], norms)
    expected = torch.nn.functional.softplus(torch.tensor([1.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(fused, expected)
    far_below = average_scores([torch.tensor([-50.0]), torch.tensor([-5000.0])], norms)
    assert float(far_below[0]) >= 0.0


def test_weight_averaging_of_two_checkpoints_is_the_elementwise_mean() -> None:
    a, b = small_net(1).state_dict(), small_net(2).state_dict()
    b["1.num_batches_tracked"] = torch.tensor(7)
    soup = uniform_soup([a, b])
    for key, value in a.items():
        if value.is_floating_point():
            torch.testing.assert_close(soup[key], (value + b[key]) / 2)
    assert int(soup["1.num_batches_tracked"]) == int(a["1.num_batches_tracked"])
    other = nn.Sequential(nn.Linear(4, 3)).state_dict()
    with pytest.raises(FusionError, match="one architecture"):
        uniform_soup([a, other])


def test_the_soup_is_uniform_when_it_helps_and_greedy_when_uniform_hurts() -> None:
    states = [small_net(i).state_dict() for i in range(3)]
    weight = "4.weight"

    def closeness_to(target: StateDict) -> float:
        return -float((target[weight] - states[0][weight]).abs().sum())

    candidates = [Candidate(f"t{i}", s, closeness_to(s)) for i, s in enumerate(states)]
    # Validation prefers exactly checkpoint 0: any averaging moves away from it.
    soup = weight_average(candidates, evaluate=closeness_to)
    assert soup.kind == "greedy" and soup.ingredients == ("t0",)
    assert soup.value >= max(c.value for c in candidates) > soup.uniform_value

    def always_one(_: StateDict) -> float:
        return 1.0

    flat = [Candidate(f"t{i}", s, 1.0) for i, s in enumerate(states)]
    uniform = weight_average(flat, evaluate=always_one)
    assert uniform.kind == "uniform" and len(uniform.ingredients) == 3


def test_an_ensemble_artifact_round_trips_member_by_member() -> None:
    members = [small_net(i).state_dict() for i in range(2)]
    artifact = ensemble_state_dict(members)
    assert all(k.startswith(("member0.", "member1.")) for k in artifact)
    restored = split_ensemble_state_dict(artifact)
    assert len(restored) == 2
    for original, back in zip(members, restored, strict=True):
        assert original.keys() == back.keys()
        assert all(torch.equal(original[k], back[k]) for k in original)
    with pytest.raises(FusionError, match="not an ensemble key"):
        split_ensemble_state_dict({"head.weight": torch.zeros(1)})


def manifest(model_id: str) -> ModelManifest:
    return ModelManifest(
        model_id=model_id,
        name="fusion-test",
        task="one_class",
        architecture="efficientnet_lite0+knn",
        backbone_weights=WeightsProvenance(name="test", source="test", sha256="0" * 64),
        preprocessing=LITE0_PREPROCESSING,
        threshold=1.0,
        k=1,
        artifact_key="",
        artifact_sha256="0" * 64,
        dataset_sha256="0" * 64,
        n_images=1,
        spec=OneClassSpec(name="fusion-test", dataset=DatasetRef(name="scene")),
        metrics={},
        code_version="test",
        created_at=datetime.now(UTC),
    )


class ScaledModel:
    """A stand-in registry model: the score is the frame's mean brightness times ``scale``."""

    def __init__(self, scale: float) -> None:
        self.manifest = manifest(f"m-scaled-{scale:g}")
        self.scale = scale
        self.forgotten: list[str] = []

    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore]:
        return [
            FrameScore(
                score=self.scale * float(i.float().mean()),
                threshold=0.0,
                heatmap=torch.full((2, 2), self.scale * float(i.float().mean())),
            )
            for i in images
        ]

    context_frames = 0

    def forget(self, camera_id: str) -> None:
        self.forgotten.append(camera_id)


def member_scores(
    members: Sequence[ScaledModel], images: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    return [
        torch.tensor([f.score for f in m.score_frames(["val"] * len(images), images)])
        for m in members
    ]


def test_a_score_ensemble_is_fitted_on_validation_normals_and_served_as_one_model() -> None:
    images = [torch.full((3, 4, 4), v, dtype=torch.uint8) for v in (10, 12, 14, 16, 200)]
    normal = torch.tensor([True, True, True, True, False])
    members = [ScaledModel(1.0), ScaledModel(100.0)]
    fusion = fit_score_fusion(scores=member_scores(members, images), normal=normal)
    # Both members rank frames alike; normalised, they agree exactly.
    assert fusion.norms[1].scale == pytest.approx(100 * fusion.norms[0].scale)
    threshold, source = calibrate_threshold(fusion.val_scores, ~normal)
    assert source == "validation_f1"
    assert float(fusion.val_scores[:4].max()) < threshold < float(fusion.val_scores[4])
    ensemble = ScoreEnsemble(
        manifest=manifest("m-fused"), members=members, norms=fusion.norms, threshold=threshold
    )
    scores = ensemble.score_frames(["cam"] * 5, images)
    fused = torch.tensor([s.score for s in scores], dtype=torch.float64)
    torch.testing.assert_close(fused, fusion.val_scores)
    assert scores[4].score > scores[4].threshold > scores[0].score > 0.0
    assert scores[0].heatmap is not None and scores[0].heatmap.shape == (2, 2)
    ensemble.forget("cam")
    assert all("cam" in m.forgotten for m in members)


def test_probability_fusion_is_the_mean_score_and_needs_normal_frames() -> None:
    a, b = torch.tensor([0.1, 0.3, 0.9]), torch.tensor([0.2, 0.1, 0.7])
    normal = torch.tensor([True, True, False])
    fusion = fit_score_fusion(scores=[a, b], normal=normal, method="probability")
    torch.testing.assert_close(fusion.val_scores, ((a + b) / 2).double())
    assert all((n.center, n.scale) == (0.0, 1.0) for n in fusion.norms)
    with pytest.raises(FusionError, match="1 labeled normal"):
        fit_score_fusion(scores=[a, b], normal=torch.tensor([True, False, False]))


def test_without_abnormal_frames_the_threshold_is_a_false_positive_rate_of_normals() -> None:
    scores = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    threshold, source = calibrate_threshold(scores, torch.zeros(101, dtype=torch.bool))
    assert source == "normal_fpr"
    assert float((scores > threshold).double().mean()) == pytest.approx(0.01, abs=0.01)
    figures = scores_at(scores, scores > 0.5, threshold=0.5)
    assert (figures["precision"], figures["recall"], figures["f1"]) == (1.0, 1.0, 1.0)
    assert figures["auroc"] == 1.0 and figures["false_positive_rate"] == 0.0


@dataclass(frozen=True)
class FixedFit:
    model: nn.Module
    val_probabilities: torch.Tensor
    state_dict: StateDict


def test_an_ensemble_that_hurts_validation_falls_back_to_greedy_selection() -> None:
    def auroc_like(probabilities: torch.Tensor) -> dict[str, float]:
        """Fraction of (normal, abnormal) pairs ranked right by P(abnormal)."""
        p = probabilities[:, 1]
        pairs = [(float(p[i]), float(p[j])) for i in (0, 1) for j in (2, 3)]
        return {"auroc": sum(a < b for a, b in pairs) / len(pairs)}

    perfect = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8]])
    inverted = perfect.flip(1)
    net = small_net(0)
    trials = [
        Trial(0, 1.0, FixedFit(net, perfect, net.state_dict())),
        Trial(1, 0.0, FixedFit(net, inverted, net.state_dict())),
    ]
    fused = ensemble_trials(trials, k=2, metric="auroc", direction="maximize", metrics=auroc_like)
    assert fused.kind == "greedy_ensemble" and fused.members == (0,)
    assert fused.metrics["auroc"] == 1.0 and fused.ensemble_size == 1
    assert fused.state_dict.keys() == net.state_dict().keys()
    same = [Trial(0, 1.0, trials[0].fit), Trial(2, 1.0, trials[0].fit)]
    uniform = ensemble_trials(same, k=2, metric="auroc", direction="maximize", metrics=auroc_like)
    assert uniform.kind == "ensemble" and uniform.ensemble_size == 2
