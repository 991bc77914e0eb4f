"""Per-stream normalisation and the causal smoothing a live camera can compute."""

from __future__ import annotations

import math

import pytest
import torch

from vigil_shared.vision.score_metrics import trailing_mean
from vigil_trainer.one_class.calibrate import stream_norm


def test_trailing_mean_uses_only_past_frames() -> None:
    scores = torch.tensor([0.0, 0.0, 9.0, 0.0, 0.0])
    smoothed = trailing_mean(scores, 3)
    assert smoothed.tolist() == [0.0, 0.0, 3.0, 3.0, 3.0]


def test_stream_norm_ignores_frames_without_motion() -> None:
    values = torch.tensor([float("nan"), 1.0, 3.0])
    mean, std = stream_norm(values).tolist()
    assert mean == 2.0 and std == pytest.approx(math.sqrt(2.0))
