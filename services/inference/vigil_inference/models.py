"""The models inference scores with, behind one small protocol.

Registry models implement ``vigil_shared.vision.scoring.FrameModel``; the built-in warm-up scorer
(no registry model yet) implements the same call, so the worker routes frames without knowing
which kind it holds. A warm-up camera's first frames form its bank and are not scored (``None``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch

from vigil_shared.event_lifecycle import Debounce
from vigil_shared.schemas.events import ModelRef
from vigil_shared.vision.knn import KnnScorer
from vigil_shared.vision.score_metrics import normal_threshold
from vigil_shared.vision.scoring import FrameScore

WARMUP = ModelRef(id="warmup", kind="warmup")
Embed = Callable[[Sequence[torch.Tensor]], torch.Tensor]
"""Images to (N, D) embeddings: a ``BatchEmbedder`` at the model's input size."""


class FrameScorer(Protocol):
    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> Sequence[FrameScore | None]: ...

    @property
    def context_frames(self) -> int:
        """Previous frames of a camera a score depends on (``FrameModel.context_frames``)."""
        ...

    def forget(self, camera_id: str) -> None: ...


@dataclass(frozen=True)
class ScoringModel:
    """A loaded model and the reference events carry for it; ``artifact_sha256`` is the
    registry's sha256 its artifact was checked against (None: the registry gave none)."""

    ref: ModelRef
    scorer: FrameScorer
    artifact_sha256: str | None = None
    debounce: Debounce | None = None
    """The debounce its events open and close on where it is not the worker's (its
    calibrated one)."""


@dataclass
class WarmupBank:
    """Embeddings of a camera's first ``size`` frames, then a kNN scorer over them."""

    size: int
    k: int
    target_fpr: float
    threshold_override: float | None
    _pending: list[torch.Tensor] = field(default_factory=list)
    scorer: KnnScorer | None = None

    def observe(self, embedding: torch.Tensor) -> FrameScore | None:
        if self.scorer is not None:
            score = float(self.scorer.score(embedding.unsqueeze(0))[0])
            return FrameScore(score=score, threshold=self.scorer.threshold)
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
            bank=bank, k=self.k, threshold=normal_threshold(loo, target_fpr=self.target_fpr)
        )


class WarmupModel:
    """Per-camera warm-up banks: flags change in a scene before any model was trained."""

    def __init__(
        self,
        embedder: Embed,
        *,
        frames: int,
        k: int,
        target_fpr: float,
        threshold: float | None,
    ) -> None:
        self._embedder = embedder
        self._bank_args = (frames, k, target_fpr, threshold)
        self._banks: dict[str, WarmupBank] = {}

    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore | None]:
        embeddings = self._embedder(images)
        return [self._bank(c).observe(e) for c, e in zip(camera_ids, embeddings, strict=True)]

    @property
    def context_frames(self) -> int:
        """0: a bank is learnt from whichever frames come first, so no replay rebuilds it (a
        restart learns a new bank); once learnt, it scores each frame on its own."""
        return 0

    def forget(self, camera_id: str) -> None:
        self._banks.pop(camera_id, None)

    def _bank(self, camera_id: str) -> WarmupBank:
        bank = self._banks.get(camera_id)
        if bank is None:
            bank = self._banks[camera_id] = WarmupBank(*self._bank_args)
        return bank


class Deferred:
    """A scorer built on first use. The warm-up model costs seconds of a worker's start (its
    backbone primed for every batch size), which a worker whose cameras all have registry models
    never needs: a restarted worker scores again that much sooner."""

    def __init__(self, build: Callable[[], FrameScorer]) -> None:
        self._build = build
        self._model: FrameScorer | None = None
        self._lock = threading.Lock()  # scoring threads may be first together

    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> Sequence[FrameScore | None]:
        return self._built().score_frames(camera_ids, images, times)

    @property
    def context_frames(self) -> int:
        return self._built().context_frames

    def forget(self, camera_id: str) -> None:
        if self._model is not None:
            self._model.forget(camera_id)

    def _built(self) -> FrameScorer:
        with self._lock:
            if self._model is None:
                self._model = self._build()
            return self._model


class ThresholdOverride:
    """A model whose frames are compared with a fixed threshold instead of its calibrated one
    (``VIGIL_INFERENCE_THRESHOLD``: an operator's override, or 0 in tests to make every frame
    hot)."""

    def __init__(self, model: FrameScorer, threshold: float) -> None:
        self._model = model
        self._threshold = threshold

    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore | None]:
        return [
            None if s is None else replace(s, threshold=self._threshold)
            for s in self._model.score_frames(camera_ids, images, times)
        ]

    @property
    def context_frames(self) -> int:
        return self._model.context_frames

    def forget(self, camera_id: str) -> None:
        self._model.forget(camera_id)
