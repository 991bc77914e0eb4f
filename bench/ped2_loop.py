"""The closed loop on UCSD Ped2: a model retrained from simulated reviews against the model before.

**Before**: the one_class model of the spec (``OneClassSpec`` defaults unless ``--spec``) fitted
on Ped2's training clips, as ``bench.ped2_events`` does. **Reviews**: the first ``REVIEW_SHARE``
(30%) of each test clip's frames is what the site saw first. The model before scores it in order
and its events are replayed through the worker's event lifecycle (default ``LifecycleSettings``)
at its own threshold; a simulated reviewer confirms each event that overlaps a labeled anomalous
interval and rejects every other (a false alarm), as an operator would. **Retrained**: what
``POST /api/v1/cameras/{id}/retrain`` builds, the same spec fitted on the training clips plus
that review window as the site's footage (labeled normal: anomalies nobody raised stay in it, as
they would at a site), each confirmed event's peak frame labeled ``abnormal`` and each false
alarm's peak frame ``normal``, each event its own group. As the retrain job does
(``trim_margin_s``, ``vigil_trainer.one_class.trim``), the footage is trimmed before the fit: the
model before scores it and frames it scored hot, and ``RETRAIN_TRIM_MARGIN_S`` around each of its
events not rejected by the reviewer (confirmed events included), are left out.

Both models are then scored, in order, on the remaining 70% of every test clip, frames no review
saw, and evaluated by ``vigil_shared.vision.event_metrics``: frame AUROC, event recall and false
alarms per hour at each model's own threshold. Nothing is chosen on the test clips: thresholds
come from the fits (held-out normal groups; reviewed frames only when there are enough).

    set -a; . .stack/env; set +a
    python -m bench.ped2_loop --json bench/results/ped2-loop-cpu.json
    python -m bench.ped2_loop --quick       # 3 train clips, 2 test clips, a small spec
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from bench.footage import Footage
from bench.ped2_events import FPS, merged
from bench.ped2_one_class import (
    QUICK_TEST,
    QUICK_TRAIN,
    RecordingModel,
    clip_frames,
    clip_images,
    fit_and_score,
    frame_model,
    labels_of,
    score_clip,
)
from bench.report import run_and_emit
from vigil_shared.datasets import DatasetManifest, DatasetRef, NewImage, write_dataset
from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.event_simulation import SimulatedEvent
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import S3Settings
from vigil_shared.storage import ensure_buckets, make_s3_client
from vigil_shared.vision.event_metrics import Interval, abnormal_intervals, evaluate, replay_clip
from vigil_trainer.one_class import OneClassFit
from vigil_trainer.one_class.trim import Marks, Trimmer, TrimReport, min_run, trim_footage

REVIEW_SHARE = 0.3
LABELS = {True: "abnormal", False: "normal"}
QUICK_SPEC = {"image_size": 160, "appearance": {"frame_stride": 4, "bank_size": 512}}


@dataclass(frozen=True)
class SplitClip:
    """A test clip cut in two: the review window (seen first) and the rest (evaluated)."""

    name: str
    paths: list[Path]
    labels: torch.Tensor
    cut: int

    @classmethod
    def of(cls, root: Path, name: str) -> SplitClip:
        paths = clip_frames(root, name)
        cut = math.ceil(len(paths) * REVIEW_SHARE)
        return cls(name, paths, labels_of(root, name, len(paths)), cut)


@dataclass(frozen=True)
class Review:
    """A simulated review of one event the model before raised in a review window."""

    clip: str
    first: int
    last: int
    peak: int
    confirmed: bool


def review_events(clip: SplitClip, scores: torch.Tensor, *, threshold: float) -> list[Review]:
    """The events the model before raises in the review window, each confirmed when it
    overlaps a labeled anomalous interval and rejected otherwise."""
    labels = clip.labels[: clip.cut]
    replayed = replay_clip(scores, labels, threshold=threshold, fps=FPS)
    intervals = abnormal_intervals(labels)
    return [_review(clip.name, event, scores, intervals) for event in replayed.events]


def _review(
    clip: str, event: SimulatedEvent, scores: torch.Tensor, intervals: list[Interval]
) -> Review:
    span = Interval(event.first, event.last)
    peak = event.first + int(torch.argmax(scores[event.first : event.last + 1]))
    confirmed = any(span.overlaps(i) for i in intervals)
    return Review(clip, event.first, event.last, peak, confirmed)


def review_images(clip: SplitClip, reviews: Sequence[Review]) -> list[NewImage]:
    """The review window as a retrain gathers it: the footage (normal, one group, trimmed
    before the fit) and each reviewed event's peak frame (its own group)."""
    footage = [_image(clip, index, footage_group(clip.name), "normal") for index in range(clip.cut)]
    events = [
        _image(
            clip, r.peak, f"{clip.name}-event-{r.first}", "abnormal" if r.confirmed else "normal"
        )
        for r in reviews
    ]
    return footage + events


def footage_group(clip: str) -> str:
    return f"{clip}-review"


def review_marks(reviews: Sequence[Review]) -> dict[str, Marks]:
    """Each footage group's reviewed events as the job reads them from the events table:
    confirmed ones flagged, false alarms cleared (frame index = position: the whole window)."""
    marks: dict[str, Marks] = {}
    for clip in {r.clip for r in reviews}:
        mine = [r for r in reviews if r.clip == clip]
        marks[footage_group(clip)] = Marks(
            flagged=[(r.first, r.last) for r in mine if r.confirmed],
            cleared=[(r.first, r.last) for r in mine if not r.confirmed],
        )
    return marks


def trimmed(
    dataset: DatasetManifest, before: RecordingModel, reviews: Sequence[Review], spec: OneClassSpec
) -> tuple[DatasetManifest, TrimReport]:
    """The retrain dataset with its footage trimmed by the model before, as the job does."""
    s3_settings = S3Settings()
    marks = review_marks(reviews)
    trimmer = Trimmer(
        model=before,
        s3=make_s3_client(s3_settings),
        bucket=s3_settings.datasets_bucket,
        is_footage=lambda clip: clip.group.endswith("-review"),
        marks=lambda clip: marks.get(clip.group, Marks()),
        fps=FPS,
        min_run=min_run(spec),
    )
    return trim_footage(dataset, trimmer)


def _image(clip: SplitClip, index: int, group: str, label: str) -> NewImage:
    return NewImage(
        data=clip.paths[index].read_bytes(),
        extension=".jpg",
        group=group,
        label=label,
        sequence=index,
        camera_id="ped2",
        source_name=f"{clip.name}/{clip.paths[index].name}",
    )


def store(name: str, images: Sequence[NewImage], s3_settings: S3Settings) -> DatasetManifest:
    client = make_s3_client(s3_settings)
    ensure_buckets(client, s3_settings)
    return write_dataset(
        client,
        s3_settings.datasets_bucket,
        name=name,
        images=images,
        source="composed",
        description="bench/ped2_loop.py",
    )


def fit(
    args: argparse.Namespace, root: Path, spec: OneClassSpec, dataset: DatasetManifest
) -> tuple[OneClassFit, RecordingModel, float]:
    """``spec`` fitted on ``dataset`` (``ped2_one_class.fit_and_score``, no clip scored), as
    the inference path loads it, and the fit's seconds."""
    spec = spec.model_copy(update={"dataset": DatasetRef(name=dataset.name)})
    fitted, fit_s, _, _ = fit_and_score(args, root, spec, dataset, ())
    model = frame_model(fitted, args.device)
    assert isinstance(model, RecordingModel)
    return fitted, model, fit_s


def scores_of(model: RecordingModel, paths: list[Path], batch: int) -> torch.Tensor:
    return torch.tensor(score_clip(model, paths, batch).scores, dtype=torch.float64)


def evaluated(model: RecordingModel, clips: Sequence[SplitClip], batch: int) -> dict[str, Any]:
    """Frame and event figures of the model on every clip's frames after its review window."""
    started = time.perf_counter()
    scores = {c.name: scores_of(model, c.paths[c.cut :], batch) for c in clips}
    labels = {c.name: c.labels[c.cut :] for c in clips}
    report = evaluate(scores, labels, threshold=model.manifest.threshold, fps=FPS)
    frames = sum(len(s) for s in scores.values())
    return report | {"frames_per_s": round(frames / (time.perf_counter() - started), 2)}


def headline(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "auroc": row["frames"]["auroc"],
        "event_recall": row["events"]["recall"],
        "event_recall_eventually": row["events"]["recall_eventually"],
        "false_alarms_per_hour": row["events"]["false_alarms_per_hour"],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    footage = Footage.ped2()
    root = footage.root
    train = QUICK_TRAIN if args.quick else tuple(f"Train{i:03d}" for i in range(1, 17))
    test = QUICK_TEST if args.quick else tuple(f"Test{i:03d}" for i in range(1, 13))
    overrides = json.loads(args.spec) if args.spec else (QUICK_SPEC if args.quick else {})
    spec = OneClassSpec.model_validate(
        merged({"name": "ped2-loop", "dataset": {"name": "pending"}}, overrides)
    )
    s3_settings = S3Settings()
    training = [image for c in train for image in clip_images(footage, c)]
    before_data = store(f"ped2-loop-before-{len(train)}", training, s3_settings)
    print(json.dumps({"fitting": "before"}), flush=True)
    before_fit, before, before_fit_s = fit(args, root, spec, before_data)
    clips = [SplitClip.of(root, name) for name in test]
    reviews: list[Review] = []
    for clip in clips:
        window = scores_of(before, clip.paths[: clip.cut], args.batch_size)
        reviews += review_events(clip, window, threshold=before.manifest.threshold)
    extra = [i for c in clips for i in review_images(c, [r for r in reviews if r.clip == c.name])]
    retrain_data = store(
        f"ped2-loop-retrain-{len(train)}-{len(test)}", training + extra, s3_settings
    )
    fit_data, trim = trimmed(retrain_data, before, reviews, spec)
    print(json.dumps({"fitting": "retrained", "trim": trim.as_detail()}), flush=True)
    retrained_fit, retrained, retrained_fit_s = fit(args, root, spec, fit_data)
    rows = {
        "before": evaluated(before, clips, args.batch_size)
        | {"fit_s": round(before_fit_s, 1), "fit_metrics": before_fit.metrics},
        "retrained": evaluated(retrained, clips, args.batch_size)
        | {"fit_s": round(retrained_fit_s, 1), "fit_metrics": retrained_fit.metrics},
    }
    return report_head(args, spec) | {
        "train_clips": list(train),
        "test_clips": list(test),
        "review_share": REVIEW_SHARE,
        "fps": FPS,
        "lifecycle": asdict(LifecycleSettings()),
        "reviews": {
            "confirmed": sum(r.confirmed for r in reviews),
            "false_alarms": sum(not r.confirmed for r in reviews),
            "events": [asdict(r) for r in reviews],
            "retrain_frames": len(retrain_data.items),
            "fitted_frames": len(fit_data.items),
            "trim": trim.as_detail(),
            "before_frames": len(before_data.items),
        },
        "summary": {name: headline(row) for name, row in rows.items()},
        "models": rows,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def report_head(args: argparse.Namespace, spec: OneClassSpec) -> dict[str, Any]:
    """Where and what ran: the first keys of this bench's and ``bench.ped2_labels``' reports."""
    return {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch threads {args.threads}",
        "device": args.device,
        "quick": args.quick,
        "spec": spec.model_dump(mode="json", exclude={"dataset", "name"}),
    }


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a bench that fits one spec on Ped2 (this one and ``bench.ped2_labels``)."""
    parser.add_argument("--quick", action="store_true", help="3 train, 2 test clips, small spec")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--spec", help="JSON overrides of the OneClassSpec (quick: QUICK_SPEC)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--verbose", action="store_true", help="print fit progress")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fit_arguments(parser)
    return run_and_emit(run, parser.parse_args(argv))


if __name__ == "__main__":
    main()
