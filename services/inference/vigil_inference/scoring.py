"""Scoring a batch: decode its frames, score each by its camera's production model, and record
the scores of its shadow model, if it has one.

``BatchScorer`` is the worker's one seam to the models: it takes the frames of a batch with
their cameras' routes and gives back the scored frames in batch order and the frames it
rejected (a JPEG that does not decode, a frame its model cannot score). It touches only the
models and the metrics; the worker's loop keeps lifecycles, publishing, dead letters and
commits, and swaps models only while nothing is being scored.

On a CPU a batch's cameras are scored by several threads at once (``threads``), each running
torch single-threaded: independent passes keep every core busy where one OpenMP pass over a
small batch spends much of its time in barriers (and collapses on a shared host). A camera's
frames stay together, in order, in one thread, so per-camera state (warm-up banks, motion,
smoothing) is only ever touched by one thread at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from vigil_inference.frames import Frame, Rejected, ScoredBatch, ScoredFrame
from vigil_inference.metrics import InferenceMetrics
from vigil_inference.models import ScoringModel
from vigil_inference.routing import Route
from vigil_inference.shadow_record import shadow_score
from vigil_shared.schemas.shadow_scores import ShadowScore
from vigil_shared.vision.preprocess import UndecodableImageError, decode_many
from vigil_shared.vision.scoring import FrameScore

log = logging.getLogger("vigil_inference")


@dataclass(frozen=True)
class DecodedFrame:
    """A frame with its pixels (uint8 CHW, on the scoring device): only the scorer holds them."""

    frame: Frame
    image: torch.Tensor


@dataclass
class ModelGroup:
    """A shard's frames that one model scores, in batch order."""

    model: ScoringModel
    frames: list[DecodedFrame] = field(default_factory=list)


def capture_times(frames: Sequence[DecodedFrame]) -> list[float]:
    """The frames' capture times in seconds: a motion model measures each camera's frame rate
    from them."""
    return [d.frame.headers.captured_at.timestamp() for d in frames]


Outcome = FrameScore | Rejected | None
"""What a production model made of a frame: a score, a rejection, or None for a warm-up frame
(learnt rather than scored)."""


class BatchScorer:
    """Scores one batch at a time (models keep per-camera state): ``submit`` queues batches on
    one thread; ``score`` is the same work on the caller's."""

    def __init__(self, *, device: str, metrics: InferenceMetrics, threads: int = 1) -> None:
        self._device = device
        self._metrics = metrics
        self._threads = threads
        self._stage = ThreadPoolExecutor(1, thread_name_prefix="vigil-batch")
        self._pool = (
            ThreadPoolExecutor(threads, thread_name_prefix="vigil-score") if threads > 1 else None
        )

    def submit(self, frames: Sequence[Frame], routes: Mapping[str, Route]) -> Future[ScoredBatch]:
        """``score`` on the scorer's own thread, so the caller reads the next batch meanwhile.
        ``routes`` holds every camera of ``frames``."""
        return self._stage.submit(self.score, list(frames), dict(routes))

    def score(self, frames: Sequence[Frame], routes: Mapping[str, Route]) -> ScoredBatch:
        """The batch's cameras split over the scoring threads; frames back in batch order."""
        shards = camera_shards(frames, self._threads)
        if self._pool is None or len(shards) <= 1:
            done = [self._score_shard(frames, routes)]
        else:
            futures = [self._pool.submit(self._score_shard, shard, routes) for shard in shards]
            done = [future.result() for future in futures]
        order = {frame.key: i for i, frame in enumerate(frames)}
        scored = (s for shard in done for s in shard.frames)
        return ScoredBatch(
            frames=sorted(scored, key=lambda s: order[s.frame.key]),
            rejected=[r for shard in done for r in shard.rejected],
            shadow=[s for shard in done for s in shard.shadow],
        )

    def close(self) -> None:
        """Waits for the batch being scored, if any."""
        self._stage.shutdown()
        if self._pool is not None:
            self._pool.shutdown()

    def _score_shard(self, frames: Sequence[Frame], routes: Mapping[str, Route]) -> ScoredBatch:
        """Decode, then score by model: production, then shadow (compared with production)."""
        batch = ScoredBatch()
        decoded: list[DecodedFrame] = []
        for item in self._decode(frames):
            if isinstance(item, Rejected):
                batch.rejected.append(item)
            else:
                decoded.append(item)
        scored: dict[tuple[int, int], ScoredFrame] = {}
        for group in group_by_model(decoded, lambda camera_id: routes[camera_id].production):
            outcomes = self._score_group(group.model, group.frames)
            for item, outcome in zip(group.frames, outcomes, strict=True):
                if isinstance(outcome, Rejected):
                    batch.rejected.append(outcome)
                observation = (
                    item.frame.observation(group.model, outcome)
                    if isinstance(outcome, FrameScore)
                    else None
                )
                scored[item.frame.key] = ScoredFrame(
                    item.frame, observation, group.model.scorer.context_frames
                )
        for group in group_by_model(decoded, lambda camera_id: routes[camera_id].shadow):
            batch.shadow.extend(self._record_shadow(group, scored))
        batch.frames.extend(scored[item.frame.key] for item in decoded)
        return batch

    def _decode(self, frames: Sequence[Frame]) -> list[DecodedFrame | Rejected]:
        images = decode_many([frame.jpeg for frame in frames], self._device)
        return [
            Rejected(frame.record, str(image))
            if isinstance(image, UndecodableImageError)
            else DecodedFrame(frame, image)
            for frame, image in zip(frames, images, strict=True)
        ]

    def _score_group(self, model: ScoringModel, group: list[DecodedFrame]) -> list[Outcome]:
        try:
            return list(
                model.scorer.score_frames(
                    [d.frame.camera_id for d in group],
                    [d.image for d in group],
                    capture_times(group),
                )
            )
        # A frame a model cannot score (odd size, corrupt pixels) must not stall its partition:
        # score one by one to find it and reject only that frame.
        except Exception as exc:
            if len(group) == 1:
                reason = f"model {model.ref.id} could not score it: {exc}"
                return [Rejected(group[0].frame.record, reason)]
        return [outcome for item in group for outcome in self._score_group(model, [item])]

    def _record_shadow(
        self, group: ModelGroup, production: Mapping[tuple[int, int], ScoredFrame]
    ) -> list[ShadowScore]:
        """The shadow model's scores of frames production scored too (warm-up frames and
        rejected ones have nothing to compare), counted in the metrics."""
        model = group.model
        recorded: list[ShadowScore] = []
        try:
            scores = model.scorer.score_frames(
                [d.frame.camera_id for d in group.frames],
                [d.image for d in group.frames],
                capture_times(group.frames),
            )
        except Exception as exc:  # a failing candidate never disturbs production scoring
            log.warning("shadow model failed", extra={"model_id": model.ref.id, "reason": str(exc)})
            return recorded
        for item, score in zip(group.frames, scores, strict=True):
            prod = production[item.frame.key].observation
            if score is None or prod is None:
                continue
            self._metrics.shadow_scores.labels(model.ref.id).observe(
                score.score / max(score.threshold, 1e-9)
            )
            self._metrics.shadow_frames.labels(
                model.ref.id,
                "hot" if score.score >= score.threshold else "quiet",
                "hot" if prod.hot else "quiet",
            ).inc()
            recorded.append(shadow_score(item.frame, model, score, prod))
        return recorded


def group_by_model(
    decoded: Sequence[DecodedFrame], model_of: Callable[[str], ScoringModel | None]
) -> list[ModelGroup]:
    """Frames by the model ``model_of`` their camera (if any), each group in batch order."""
    groups: dict[str, ModelGroup] = {}
    for item in decoded:
        model = model_of(item.frame.camera_id)
        if model is not None:
            groups.setdefault(model.ref.id, ModelGroup(model)).frames.append(item)
    return list(groups.values())


def camera_shards(frames: Sequence[Frame], shards: int) -> list[list[Frame]]:
    """At most ``shards`` groups of whole cameras, balanced by frame count, each in batch order."""
    per_camera: dict[str, list[Frame]] = {}
    for frame in frames:
        per_camera.setdefault(frame.camera_id, []).append(frame)
    bins: list[list[Frame]] = [[] for _ in range(min(shards, len(per_camera)) or 1)]
    for camera_frames in sorted(per_camera.values(), key=len, reverse=True):
        min(bins, key=len).extend(camera_frames)
    order = {id(frame): index for index, frame in enumerate(frames)}
    return [sorted(b, key=lambda frame: order[id(frame)]) for b in bins if b]
