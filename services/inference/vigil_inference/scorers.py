"""Which normality model scores a camera's frames.

With a registry model every camera is scored against its bank. Without one, each camera gets a
warm-up bank: its first frames are taken as normal (no events), then later frames are scored
against them. That lets a fresh install flag change in a scene before any fine-tuning job ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vigil_shared.schemas.events import ModelRef
from vigil_shared.vision.knn import KnnScorer, calibrate_threshold


@dataclass(frozen=True)
class Scored:
    score: float
    threshold: float
    model: ModelRef


@dataclass
class WarmupBank:
    """Embeddings of a camera's first ``size`` frames, then a kNN scorer over them."""

    size: int
    k: int
    target_fpr: float
    threshold_override: float | None
    _pending: list[torch.Tensor] = field(default_factory=list)
    scorer: KnnScorer | None = None

    def observe(self, embedding: torch.Tensor) -> Scored | None:
        if self.scorer is not None:
            score = float(self.scorer.score(embedding.unsqueeze(0))[0])
            return Scored(score, self.scorer.threshold, ModelRef(id="warmup", kind="warmup"))
        self._pending.append(embedding.detach().cpu())
        if len(self._pending) >= self.size:
            self.scorer = self._fit(torch.stack(self._pending))
            self._pending.clear()
        return None

    def _fit(self, bank: torch.Tensor) -> KnnScorer:
        if self.threshold_override is not None:
            return KnnScorer(bank=bank, k=self.k, threshold=self.threshold_override)
        # Leave-one-out: each frame scored against the others estimates normal scores.
        distances = torch.cdist(bank, bank).fill_diagonal_(float("inf"))
        k = min(self.k, bank.shape[0] - 1)
        loo = distances.topk(k, dim=1, largest=False).values.mean(dim=1)
        return KnnScorer(
            bank=bank, k=self.k, threshold=calibrate_threshold(loo, target_fpr=self.target_fpr)
        )


class ScorerRouter:
    """Routes each camera to its scorer: the registry model if set, else its warm-up bank."""

    def __init__(
        self,
        *,
        registry_model: tuple[ModelRef, KnnScorer] | None,
        warmup_frames: int,
        k: int,
        target_fpr: float,
        threshold_override: float | None,
    ) -> None:
        self._registry = registry_model
        self._warmup_args = (warmup_frames, k, target_fpr, threshold_override)
        self._banks: dict[str, WarmupBank] = {}

    def score(self, camera_id: str, embedding: torch.Tensor) -> Scored | None:
        if self._registry is not None:
            ref, scorer = self._registry
            threshold = self._warmup_args[3]
            score = float(scorer.score(embedding.unsqueeze(0))[0])
            return Scored(score, scorer.threshold if threshold is None else threshold, ref)
        bank = self._banks.get(camera_id)
        if bank is None:
            bank = self._banks[camera_id] = WarmupBank(*self._warmup_args)
        return bank.observe(embedding)
