"""Threshold calibration hits its target false-positive rate; ranking metrics are right."""

from __future__ import annotations

import math

import pytest
import torch

from vigil_trainer.one_class.calibrate import (
    auroc,
    average_precision,
    best_f1_threshold,
    normal_threshold,
    stream_norm,
    trailing_mean,
)


@pytest.mark.parametrize("target", [0.01, 0.05, 0.2])
def test_threshold_hits_the_target_fpr_on_fresh_normal_scores(target: float) -> None:
    generator = torch.Generator().manual_seed(0)
    held_out = torch.randn(100_000, generator=generator)
    fresh = torch.randn(100_000, generator=generator)
    threshold = normal_threshold(held_out, target_fpr=target)
    assert float((held_out > threshold).double().mean()) == pytest.approx(target, abs=1e-4)
    assert float((fresh > threshold).double().mean()) == pytest.approx(target, rel=0.15)


def test_auroc_and_aupr_on_known_rankings() -> None:
    scores = torch.tensor([0.1, 0.2, 0.3, 0.4])
    assert auroc(scores, torch.tensor([False, False, True, True])) == 1.0
    assert auroc(scores, torch.tensor([True, True, False, False])) == 0.0
    assert auroc(torch.ones(4), torch.tensor([True, False, True, False])) == 0.5  # ties: half
    assert math.isnan(auroc(scores, torch.zeros(4, dtype=torch.bool)))
    assert average_precision(scores, torch.tensor([False, False, True, True])) == 1.0
    assert average_precision(scores, torch.tensor([True, False, False, False])) == 0.25


def test_best_f1_threshold_separates_separable_scores() -> None:
    scores = torch.tensor([0.1, 0.2, 0.3, 0.8, 0.9])
    threshold, f1 = best_f1_threshold(scores, torch.tensor([False, False, False, True, True]))
    assert 0.3 < threshold < 0.8 and f1 == 1.0


def test_trailing_mean_uses_only_past_frames() -> None:
    scores = torch.tensor([0.0, 0.0, 9.0, 0.0, 0.0])
    smoothed = trailing_mean(scores, 3)
    assert smoothed.tolist() == [0.0, 0.0, 3.0, 3.0, 3.0]


def test_stream_norm_ignores_frames_without_motion() -> None:
    values = torch.tensor([float("nan"), 1.0, 3.0])
    mean, std = stream_norm(values).tolist()
    assert mean == 2.0 and std == pytest.approx(math.sqrt(2.0))
