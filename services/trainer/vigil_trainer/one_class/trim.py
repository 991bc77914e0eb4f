"""Trimmed footage: only what production believed normal, or reviewers declared normal, is fitted.

A retrain takes a camera's retained footage as normal, but footage outside the events reviewers
confirmed still holds anomalies: an event ends while the anomaly goes on at a lower score, or
starts after it began, and events nobody reviewed are not known to be false. Fitted into the
memory banks as normal, those frames teach the candidate that anomalies are normal (on Ped2 the
retrained model fell from 0.976 to 0.892 frame AUROC). So before the fit, production (the model
the candidate would replace, loaded anyway to compare with it) scores each footage group in
capture order, as inference would, and the frames left out are:

- **hot**: scored at or above ``cut``, the lower of production's threshold and its calibrated
  high quantile (``holdout_score_p99``), so a threshold set high on labels lets no warm frame in;
- **near an event**: every event production would raise on that footage (the worker's lifecycle
  replayed) and every event it did raise there (confirmed or not reviewed), widened by a margin
  on both sides, because an event's span covers only its hot frames, not the anomaly around it.

Events reviewers rejected (false alarms) are kept, explicitly: that footage is normal by an
operator's word, and it is what the retrain is meant to learn. The kept frames of a group are
split into contiguous runs (a run is a group of its own: motion must never see a jump in time),
and runs too short to give motion a persistent flow are dropped. Everything is counted by reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from minio import Minio

from vigil_shared.datasets import DatasetItem, DatasetManifest
from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.event_simulation import replay
from vigil_shared.schemas.one_class import RETRAIN_TRIM_MARGIN_S, OneClassSpec
from vigil_shared.vision.scoring import FrameModel
from vigil_trainer.one_class.clips import Clip, capture_times, clips_of, read_frames

Span = tuple[int, int]


@dataclass(frozen=True)
class Marks:
    """A footage clip's known events as inclusive frame index spans: ``flagged`` (confirmed or
    not reviewed: left out with a margin) and ``cleared`` (reviewed false alarms: kept)."""

    flagged: Sequence[Span] = ()
    cleared: Sequence[Span] = ()


@dataclass(frozen=True)
class ClipTrim:
    """Which frames of one clip are kept, and how many were left out for which reason."""

    keep: torch.Tensor  # bool (N,)
    hot: int
    near_event: int
    cleared: int


@dataclass
class TrimReport:
    """Counts over all footage groups, for the job's log and the evaluation's detail."""

    footage_frames: int = 0
    kept_frames: int = 0
    left_out: dict[str, int] = field(
        default_factory=lambda: {"hot": 0, "near_event": 0, "short_run": 0}
    )
    kept_as_reviewed_normal: int = 0
    cut: float = 0.0
    margin_frames: int = 0

    def as_detail(self) -> dict[str, object]:
        return {
            "footage_frames": self.footage_frames,
            "kept_frames": self.kept_frames,
            "left_out": dict(self.left_out),
            "kept_as_reviewed_normal": self.kept_as_reviewed_normal,
            "production_cut": self.cut,
            "margin_frames": self.margin_frames,
        }


def min_run(spec: OneClassSpec) -> int:
    """The shortest run of kept frames worth a group: motion's persistence needs that many
    consecutive flows (one more frame); appearance alone can use any frame."""
    return spec.motion.persistence + 1 if spec.motion is not None else 1


def production_cut(model: FrameModel) -> float:
    """The score from which production's frames are hot: its threshold, or its calibrated high
    quantile of held-out normal scores when that is lower."""
    threshold = model.manifest.threshold
    p99 = model.manifest.metrics.get("holdout_score_p99")
    return min(threshold, p99) if p99 is not None and p99 > 0 else threshold


def trim_mask(
    scores: torch.Tensor,
    *,
    cut: float,
    margin: int,
    fps: float,
    marks: Marks,
    lifecycle: LifecycleSettings | None = None,
) -> ClipTrim:
    """The kept frames of one clip from production's scores (NaN: not scored yet, not hot)."""
    n = scores.numel()
    filled = torch.nan_to_num(scores.double(), nan=float("-inf"))
    hot = filled >= cut
    settings = lifecycle or LifecycleSettings()
    replayed = replay(filled.tolist(), threshold=cut, settings=settings, fps=fps)
    cleared = _covered(n, marks.cleared)
    spans = list(marks.flagged) + [(e.first, e.last) for e in replayed]
    near = torch.zeros(n, dtype=torch.bool)
    for first, last in spans:
        if bool(cleared[first : last + 1].any()):
            # Production's own replay of a false alarm a reviewer rejected: normal, kept.
            cleared[first : last + 1] = True
            continue
        near[max(0, first - margin) : last + margin + 1] = True
    hot_out = hot & ~cleared
    near_out = near & ~hot & ~cleared
    return ClipTrim(
        keep=~(hot_out | near_out),
        hot=int(hot_out.sum()),
        near_event=int(near_out.sum()),
        cleared=int((cleared & (hot | near)).sum()),
    )


def _covered(n: int, spans: Sequence[Span]) -> torch.Tensor:
    out = torch.zeros(n, dtype=torch.bool)
    for first, last in spans:
        out[max(0, first) : max(0, last + 1)] = True
    return out


def runs(keep: torch.Tensor) -> list[Span]:
    """Contiguous runs of kept frames, as inclusive spans."""
    out: list[Span] = []
    start: int | None = None
    for index, kept in enumerate(keep.tolist()):
        if kept and start is None:
            start = index
        if not kept and start is not None:
            out.append((start, index - 1))
            start = None
    if start is not None:
        out.append((start, keep.numel() - 1))
    return out


def clip_scores(
    model: FrameModel, s3: Minio, bucket: str, clip: Clip, *, chunk: int
) -> torch.Tensor:
    """The model's frame scores of a clip in capture order, as inference would (NaN kept),
    with the frames' capture times where every frame has one (a model fitted at another rate
    measures the clip's, as live)."""
    out: list[float] = []
    times = capture_times(clip)
    for frames in read_frames(s3, bucket, clip, chunk=chunk):
        chunk_times = None if times is None else times[len(out) : len(out) + len(frames)]
        scored = model.score_frames([clip.group] * len(frames), frames, chunk_times)
        out.extend(s.score for s in scored)
    model.forget(clip.group)
    return torch.tensor(out, dtype=torch.float64)


@dataclass(frozen=True)
class Trimmer:
    """What trimming a dataset needs: production, where the frames are, which groups are
    footage, each footage clip's known events, the frame rate and the shortest run kept."""

    model: FrameModel
    s3: Minio
    bucket: str
    is_footage: Callable[[Clip], bool]
    marks: Callable[[Clip], Marks]
    fps: float
    min_run: int
    margin_s: float = RETRAIN_TRIM_MARGIN_S
    chunk: int = 16
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)  # inference's


def trim_footage(dataset: DatasetManifest, trimmer: Trimmer) -> tuple[DatasetManifest, TrimReport]:
    """``dataset`` with its footage groups trimmed (the others as they are), and the counts.
    The version is kept: the trimmed set is a function of that version and production."""
    margin = round(trimmer.margin_s * trimmer.fps)
    report = TrimReport(cut=production_cut(trimmer.model), margin_frames=margin)
    items: list[DatasetItem] = []
    for clip in clips_of(dataset):
        if not trimmer.is_footage(clip):
            items.extend(clip.items)
            continue
        scores = clip_scores(trimmer.model, trimmer.s3, trimmer.bucket, clip, chunk=trimmer.chunk)
        trim = trim_mask(
            scores,
            cut=report.cut,
            margin=margin,
            fps=trimmer.fps,
            marks=trimmer.marks(clip),
            lifecycle=trimmer.lifecycle,
        )
        report.footage_frames += len(clip.items)
        report.left_out["hot"] += trim.hot
        report.left_out["near_event"] += trim.near_event
        report.kept_as_reviewed_normal += trim.cleared
        for first, last in runs(trim.keep):
            if last - first + 1 < trimmer.min_run:
                report.left_out["short_run"] += last - first + 1
                continue
            group = clip.group if first == 0 and last == len(clip.items) - 1 else None
            group = group or f"{clip.group}~{first}"
            kept = [i.model_copy(update={"group": group}) for i in clip.items[first : last + 1]]
            report.kept_frames += len(kept)
            items.extend(kept)
    return dataset.model_copy(update={"items": tuple(items)}), report
