"""Greedy coreset: covers far-apart points, deterministic, batched sets chosen independently."""

from __future__ import annotations

import pytest
import torch

from vigil_shared.vision.coreset import greedy_coreset, greedy_coreset_indices


def clustered(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A dense blob of 500 points near the origin and 4 far corners."""
    generator = torch.Generator().manual_seed(seed)
    blob = torch.randn(500, 16, generator=generator) * 0.05
    corners = torch.zeros(4, 16)
    for i in range(4):
        corners[i, i] = 10.0
    return torch.cat([blob, corners]), corners


def test_coreset_keeps_every_far_point() -> None:
    points, corners = clustered(0)
    chosen = greedy_coreset(points, size=5, seed=0, projection_dim=None)
    for corner in corners:
        assert (chosen - corner).norm(dim=1).min() < 1e-6


def test_projection_keeps_far_points_too() -> None:
    points, corners = clustered(1)
    chosen = greedy_coreset(points, size=8, seed=3, projection_dim=8)
    for corner in corners:
        assert (chosen - corner).norm(dim=1).min() < 1e-6


def test_coreset_covers_better_than_a_random_sample() -> None:
    points = torch.randn(2000, 8, generator=torch.Generator().manual_seed(2)) ** 3
    chosen = greedy_coreset(points, size=64, seed=0)
    random = points[torch.randperm(2000, generator=torch.Generator().manual_seed(0))[:64]]
    radius = torch.cdist(points, chosen).min(dim=1).values.max()
    random_radius = torch.cdist(points, random).min(dim=1).values.max()
    assert radius < random_radius


def test_same_seed_same_choice_and_batched_sets_are_independent() -> None:
    points = torch.randn(3, 300, 6, generator=torch.Generator().manual_seed(4))
    batched = greedy_coreset_indices(points, size=20, seed=7)
    assert torch.equal(batched, greedy_coreset_indices(points, size=20, seed=7))
    assert batched.shape == (3, 20)
    for index in range(3):
        assert len(set(batched[index].tolist())) == 20


def test_small_sets_are_kept_whole_and_bad_sizes_refused() -> None:
    points = torch.randn(5, 3)
    assert torch.equal(greedy_coreset_indices(points, size=10, seed=0), torch.arange(5))
    with pytest.raises(ValueError, match="at least 1"):
        greedy_coreset_indices(points, size=0, seed=0)
