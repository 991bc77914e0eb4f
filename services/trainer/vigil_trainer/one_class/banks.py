"""The memory banks: normal patch features (site projection, greedy coreset) for appearance,
normal frames' mean patch features for the scene stream."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from vigil_shared.schemas.one_class import AppearanceSpec, OneClassSpec
from vigil_shared.vision.coreset import greedy_coreset_indices
from vigil_shared.vision.one_class_model import (
    APPEARANCE_BANK,
    PROJECTION_COMPONENTS,
    PROJECTION_MEAN,
    SCENE_BANK,
)
from vigil_shared.vision.patches import fit_whitening

# The coreset is chosen from at most this many patches (a seeded random sample of all of them):
# k-center greedy costs candidates x bank size, and beyond this the bank barely changes.
MAX_CANDIDATES = 50_000


def bank_size(spec: AppearanceSpec, n_patches: int) -> int:
    return max(1, min(spec.bank_size, math.ceil(spec.coreset_ratio * n_patches), n_patches))


def candidates(patches: torch.Tensor, *, seed: int) -> torch.Tensor:
    if patches.shape[0] <= MAX_CANDIDATES:
        return patches.float()
    generator = torch.Generator().manual_seed(seed)
    keep = torch.randperm(patches.shape[0], generator=generator)[:MAX_CANDIDATES]
    return patches[keep].float()


def appearance_bank(
    patches: torch.Tensor,
    *,
    spec: AppearanceSpec,
    seed: int,
    device: str,
    should_stop: Callable[[], bool],
) -> dict[str, torch.Tensor]:
    """Tensors of the appearance stream (bank, and projection when ``whiten_dim``) from the
    (M, D) raw patch features of the bank's clips."""
    pool = candidates(patches, seed=seed).to(device)
    tensors: dict[str, torch.Tensor] = {}
    if spec.whiten_dim:
        mean, components = fit_whitening(pool, dim=spec.whiten_dim)
        pool = (pool - mean) @ components
        tensors[PROJECTION_MEAN] = mean
        tensors[PROJECTION_COMPONENTS] = components
    if should_stop():
        return tensors
    size = bank_size(spec, patches.shape[0])
    keep = greedy_coreset_indices(pool, size=size, seed=seed)
    tensors[APPEARANCE_BANK] = pool[keep].contiguous()
    return {name: t.cpu() for name, t in tensors.items()}


def scene_bank(
    frames: torch.Tensor, tensors: dict[str, torch.Tensor], *, spec: OneClassSpec
) -> dict[str, torch.Tensor]:
    """The scene stream's bank from the (F, D) raw mean patch features of the bank frames: in
    the appearance stream's projection (a mean of projected patches is the projected mean: it
    is linear), at most ``scene.bank_frames`` of them (a seeded sample), kept whole: a frame
    bank is small, and a coreset would keep exactly the unusual frames a threshold must not
    call normal."""
    assert spec.scene is not None
    pooled = frames.float()
    if PROJECTION_MEAN in tensors:
        pooled = (pooled - tensors[PROJECTION_MEAN].cpu()) @ tensors[PROJECTION_COMPONENTS].cpu()
    if pooled.shape[0] > spec.scene.bank_frames:
        generator = torch.Generator().manual_seed(spec.seed)
        pooled = pooled[torch.randperm(pooled.shape[0], generator=generator)]
        pooled = pooled[: spec.scene.bank_frames]
    return {SCENE_BANK: pooled.contiguous()}
