"""kNN scoring, threshold calibration and the per-camera warm-up bank."""

from __future__ import annotations

import torch

from vigil_inference.scorers import ScorerRouter
from vigil_shared.schemas.events import ModelRef
from vigil_shared.vision.knn import KnnScorer, calibrate_threshold, subsample_bank


def test_knn_score_is_zero_on_the_bank_and_grows_with_distance() -> None:
    bank = torch.eye(4)
    scorer = KnnScorer(bank=bank, k=1, threshold=0.5)
    scores = scorer.score(torch.stack([bank[0], bank[0] * 3]))
    assert scores[0] == 0
    assert scores[1] > 1.9


def test_threshold_sits_at_the_target_false_positive_rate() -> None:
    scores = torch.arange(1000, dtype=torch.float32)
    threshold = calibrate_threshold(scores, target_fpr=0.05)
    assert (scores > threshold).sum().item() == 50


def test_subsample_is_deterministic_for_a_seed() -> None:
    emb = torch.randn(100, 8)
    assert torch.equal(subsample_bank(emb, 10, seed=1), subsample_bank(emb, 10, seed=1))
    assert subsample_bank(emb, 10, seed=1).shape == (10, 8)
    assert subsample_bank(emb, 500, seed=1).shape == (100, 8)


def router(**overrides: object) -> ScorerRouter:
    args: dict[str, object] = {
        "registry_model": None,
        "warmup_frames": 5,
        "k": 2,
        "target_fpr": 0.01,
        "threshold_override": None,
    }
    args.update(overrides)
    return ScorerRouter(**args)  # type: ignore[arg-type]


def test_warmup_frames_are_not_scored_then_later_frames_are() -> None:
    scorers = router()
    generator = torch.Generator().manual_seed(0)
    normal = [torch.randn(16, generator=generator) * 0.01 for _ in range(6)]
    assert [scorers.score("cam", e) for e in normal[:5]] == [None] * 5
    usual = scorers.score("cam", normal[5])
    odd = scorers.score("cam", torch.ones(16))
    assert usual is not None and odd is not None
    assert usual.model == ModelRef(id="warmup", kind="warmup")
    assert usual.score < usual.threshold < odd.score


def test_cameras_warm_up_independently() -> None:
    scorers = router(warmup_frames=2)
    scorers.score("a", torch.zeros(4))
    scorers.score("a", torch.zeros(4))
    assert scorers.score("a", torch.zeros(4)) is not None
    assert scorers.score("b", torch.zeros(4)) is None


def test_threshold_override_applies_to_registry_models() -> None:
    bank = torch.zeros(3, 4)
    registry = (ModelRef(id="m-1", kind="registry"), KnnScorer(bank=bank, k=1, threshold=9.0))
    assert router(registry_model=registry).score("a", torch.ones(4)).threshold == 9.0  # type: ignore[union-attr]
    scored = router(registry_model=registry, threshold_override=0.0).score("a", torch.ones(4))
    assert scored is not None and scored.threshold == 0.0 and scored.model.id == "m-1"
