"""A normality model as a bank of embeddings of normal frames, scored by kNN distance.

This is the scoring half only (fit helpers are pure tensor code with no training loop), so the
inference service can use it without importing the trainer. ``KnnFrameModel`` serves the first
one_class models (a bank of global Lite0 embeddings, the artifact's ``bank`` tensor).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.vision.backbones import FrameEmbedder, load_efficientnet_lite0
from vigil_shared.vision.efficientnet_lite import fused_for_inference
from vigil_shared.vision.preprocess import to_batch
from vigil_shared.vision.scoring import FrameScore

BANK_TENSOR = "bank"


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


@dataclass
class KnnFrameModel:
    """The first one_class models (a bank of global Lite0 embeddings) as a ``FrameModel``."""

    manifest: ModelManifest
    scorer: KnnScorer
    embedder: FrameEmbedder
    device: str

    @classmethod
    def from_artifact(
        cls, manifest: ModelManifest, tensors: dict[str, torch.Tensor], device: str
    ) -> KnnFrameModel:
        scorer = KnnScorer(
            bank=tensors[BANK_TENSOR].to(device), k=manifest.k or 1, threshold=manifest.threshold
        )
        backbone = load_efficientnet_lite0()
        embedder = FrameEmbedder(fused_for_inference(backbone.module)).to(device).eval()
        return cls(manifest=manifest, scorer=scorer, embedder=embedder, device=device)

    @torch.inference_mode()
    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore]:
        if not images:
            return []
        batch = to_batch([i.to(self.device) for i in images], self.manifest.own_preprocessing())
        scores = self.scorer.score(self.embedder(batch)).cpu().tolist()
        return [FrameScore(score=s, threshold=self.scorer.threshold) for s in scores]

    @property
    def context_frames(self) -> int:
        return 0

    def forget(self, camera_id: str) -> None:
        """Frames are scored independently."""
