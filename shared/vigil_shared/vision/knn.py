"""A normality model as a bank of embeddings of normal frames, scored by kNN distance.

This is the scoring half only (fit helpers are pure tensor code with no training loop), so the
inference service can use it without importing the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class KnnScorer:
    bank: torch.Tensor  # (N, D) embeddings of normal frames
    k: int
    threshold: float

    def score(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Mean distance to the ``k`` nearest bank entries; (M, D) -> (M,)."""
        distances = torch.cdist(embeddings.float(), self.bank.to(embeddings.device).float())
        k = min(self.k, self.bank.shape[0])
        return distances.topk(k, dim=1, largest=False).values.mean(dim=1)


def subsample_bank(embeddings: torch.Tensor, size: int, *, seed: int) -> torch.Tensor:
    if embeddings.shape[0] <= size:
        return embeddings
    generator = torch.Generator().manual_seed(seed)
    return embeddings[torch.randperm(embeddings.shape[0], generator=generator)[:size]]
