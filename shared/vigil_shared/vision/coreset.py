"""Greedy k-center coreset: a small memory bank that still covers every normal feature.

Keeping every patch of every normal frame makes the bank huge and the kNN slow; a random
subsample drops rare-but-normal patterns and turns them into false alarms. k-center greedy
repeatedly adds the feature farthest from those already chosen, so the bank's coverage radius
shrinks as fast as it can (a 2-approximation of the optimal cover). Distances are computed in a
seeded random projection (Johnson-Lindenstrauss), which preserves them well enough to choose
points and makes each step cheap; the chosen rows are returned, not their projections.
"""

from __future__ import annotations

import torch


def random_projection(dim_in: int, dim_out: int, *, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    projection: torch.Tensor = torch.randn(dim_in, dim_out, generator=generator) / dim_out**0.5
    return projection


def greedy_coreset_indices(
    features: torch.Tensor, *, size: int, seed: int, projection_dim: int | None = 128
) -> torch.Tensor:
    """Indices of ``size`` rows chosen by k-center greedy; deterministic for a given ``seed``.

    ``features`` is (N, D), or (L, N, D) to choose ``size`` rows independently in each of L
    sets in one batched pass (then the result is (L, size)). With ``size >= N`` every row is
    kept. ``projection_dim`` None (or >= D) compares the features themselves.
    """
    batched = features.dim() == 3
    points = features if batched else features.unsqueeze(0)
    n_sets, n, dim = points.shape
    if size < 1:
        raise ValueError(f"coreset size must be at least 1, got {size}")
    if size >= n:
        keep = torch.arange(n, device=features.device).expand(n_sets, n)
        return keep if batched else keep[0]
    points = points.float()
    if projection_dim is not None and projection_dim < dim:
        projection = random_projection(dim, projection_dim, seed=seed).to(points.device)
        points = points @ projection
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(n, (n_sets,), generator=generator).to(points.device)
    chosen = torch.empty((n_sets, size), dtype=torch.long, device=points.device)
    rows = torch.arange(n_sets, device=points.device)
    nearest = torch.full((n_sets, n), float("inf"), device=points.device)
    current = first
    for step in range(size):
        chosen[:, step] = current
        centre = points[rows, current].unsqueeze(1)  # (L, 1, D)
        distance = (points - centre).pow(2).sum(dim=-1)  # (L, N)
        nearest = torch.minimum(nearest, distance)
        current = nearest.argmax(dim=1)
    return chosen if batched else chosen[0]


def greedy_coreset(
    features: torch.Tensor, *, size: int, seed: int, projection_dim: int | None = 128
) -> torch.Tensor:
    """The rows of (N, D) ``features`` that ``greedy_coreset_indices`` chooses."""
    if features.dim() != 2:
        raise ValueError(f"expected (N, D) features, got shape {tuple(features.shape)}")
    return features[
        greedy_coreset_indices(features, size=size, seed=seed, projection_dim=projection_dim)
    ]
