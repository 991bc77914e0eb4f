"""The ranking metrics and thresholds every figure in manifests and benchmarks rests on."""

from __future__ import annotations

import math

import pytest
import torch

from vigil_shared.vision.score_metrics import (
    auroc,
    average_precision,
    best_f1_threshold,
    normal_threshold,
)


@pytest.mark.parametrize("target", [0.01, 0.05, 0.2])
def test_threshold_hits_the_target_fpr_on_fresh_normal_scores(target: float) -> None:
    generator = torch.Generator().manual_seed(0)
    held_out = torch.randn(100_000, generator=generator)
    fresh = torch.randn(100_000, generator=generator)
    threshold = normal_threshold(held_out, target_fpr=target)
    assert float((held_out > threshold).double().mean()) == pytest.approx(target, abs=1e-4)
    assert float((fresh > threshold).double().mean()) == pytest.approx(target, rel=0.15)
    exact = torch.arange(1000, dtype=torch.float32)
    assert int((exact > normal_threshold(exact, target_fpr=0.05)).sum()) == 50


def test_auroc_and_aupr_on_known_rankings() -> None:
    scores = torch.tensor([0.1, 0.2, 0.3, 0.4])
    assert auroc(scores, torch.tensor([False, False, True, True])) == 1.0
    assert auroc(scores, torch.tensor([True, True, False, False])) == 0.0
    assert math.isnan(auroc(scores, torch.zeros(4, dtype=torch.bool)))
    assert average_precision(scores, torch.tensor([False, False, True, True])) == 1.0
    assert average_precision(scores, torch.tensor([True, False, False, False])) == 0.25
    assert math.isnan(average_precision(scores, torch.zeros(4, dtype=torch.bool)))
    mixed = torch.tensor([0.1, 0.4, 0.35, 0.8])
    positives = torch.tensor([False, False, True, True])
    assert auroc(mixed, positives) == pytest.approx(0.75)
    assert average_precision(mixed, positives) == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_tied_scores_are_one_threshold_whatever_the_frame_order() -> None:
    assert auroc(torch.ones(4), torch.tensor([True, False, True, False])) == 0.5
    assert average_precision(torch.ones(4), torch.tensor([True, True, False, False])) == 0.5
    assert average_precision(torch.ones(4), torch.tensor([False, False, True, True])) == 0.5
    scores = torch.tensor([0.9, 0.5, 0.5, 0.1])
    first = average_precision(scores, torch.tensor([True, True, False, False]))
    second = average_precision(scores, torch.tensor([True, False, True, False]))
    assert first == second == pytest.approx(0.5 * 1.0 + 0.5 * (2 / 3))


def test_best_f1_threshold_separates_separable_scores() -> None:
    scores = torch.tensor([0.1, 0.2, 0.3, 0.8, 0.9])
    threshold, f1 = best_f1_threshold(scores, torch.tensor([False, False, False, True, True]))
    assert 0.3 < threshold < 0.8 and f1 == 1.0
    tied = torch.tensor([0.1, 0.9, 0.9, 0.9])  # a cut cannot split tied frames
    threshold, f1 = best_f1_threshold(tied, torch.tensor([False, True, True, False]))
    assert 0.1 < threshold < 0.9 and f1 == pytest.approx(2 * 2 / (3 + 2))


def test_when_flagging_every_frame_is_best_the_cut_sits_just_under_the_lowest_score() -> None:
    scores = torch.tensor([0.0, 0.2, 0.4])
    threshold, f1 = best_f1_threshold(scores, torch.tensor([True, True, True]))
    assert f1 == 1.0 and -1e-5 < threshold < 0.0
    assert bool((scores > threshold).all())
