"""kNN scoring and the per-camera warm-up bank."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vigil_inference.models import ThresholdOverride, WarmupModel
from vigil_shared.vision.knn import KnnScorer, subsample_bank


def test_knn_score_is_zero_on_the_bank_and_grows_with_distance() -> None:
    bank = torch.eye(4)
    scorer = KnnScorer(bank=bank, k=1, threshold=0.5)
    scores = scorer.score(torch.stack([bank[0], bank[0] * 3]))
    assert scores[0] == 0
    assert scores[1] > 1.9


def test_subsample_is_deterministic_for_a_seed() -> None:
    emb = torch.randn(100, 8)
    assert torch.equal(subsample_bank(emb, 10, seed=1), subsample_bank(emb, 10, seed=1))
    assert subsample_bank(emb, 10, seed=1).shape == (10, 8)
    assert subsample_bank(emb, 500, seed=1).shape == (100, 8)


def identity(images: Sequence[torch.Tensor]) -> torch.Tensor:
    """An embedder that passes the 'images' through: the tests hand in embeddings directly."""
    return torch.stack(list(images))


def warmup(frames: int = 5, threshold: float | None = None) -> WarmupModel:
    return WarmupModel(identity, frames=frames, k=2, target_fpr=0.01, threshold=threshold)


def test_warmup_frames_are_not_scored_then_later_frames_are() -> None:
    model = warmup()
    generator = torch.Generator().manual_seed(0)
    normal = [torch.randn(16, generator=generator) * 0.01 for _ in range(6)]
    assert model.score_frames(["cam"] * 5, normal[:5]) == [None] * 5
    usual, odd = model.score_frames(["cam", "cam"], [normal[5], torch.ones(16)])
    assert usual is not None and odd is not None
    assert usual.score < usual.threshold < odd.score


def test_cameras_warm_up_independently_and_forget_restarts_the_bank() -> None:
    model = warmup(frames=2)
    model.score_frames(["a", "a"], [torch.zeros(4), torch.zeros(4)])
    assert model.score_frames(["a", "b"], [torch.zeros(4), torch.zeros(4)])[0] is not None
    assert model.score_frames(["b"], [torch.zeros(4)]) == [None]
    model.forget("a")
    assert model.score_frames(["a"], [torch.zeros(4)]) == [None]


def test_threshold_override_replaces_a_models_calibrated_threshold() -> None:
    calibrated = warmup(frames=1)
    forced = ThresholdOverride(warmup(frames=1), 0.0)
    for model in (calibrated, forced):
        model.score_frames(["a"], [torch.zeros(4)])
    [own] = calibrated.score_frames(["a"], [torch.ones(4)])
    [override] = forced.score_frames(["a"], [torch.ones(4)])
    assert own is not None and override is not None
    assert override.threshold == 0.0 and own.threshold != 0.0
    assert override.score == own.score
    assert forced.score_frames(["b"], [torch.zeros(4)]) == [None], "warm-up frames stay unscored"
