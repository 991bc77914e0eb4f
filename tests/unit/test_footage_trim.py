"""Trimmed footage (``vigil_trainer.one_class.trim``, ``footage``): a frame production scored hot,
and the frames around an event it raised or that was confirmed, never reach the candidate's
banks; a reviewed false alarm's frames do; a few reviewed frames do not set the threshold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from vigil_shared.datasets import DatasetItem, DatasetManifest
from vigil_trainer.one_class import trim
from vigil_trainer.one_class.clips import Clip, clips_of, split_clips
from vigil_trainer.one_class.fit import (
    MIN_LABELED_FRAMES,
    MIN_LABELED_GROUPS,
    enough_labels,
)
from vigil_trainer.one_class.footage import KnownEvent, event_marks, is_footage
from vigil_trainer.one_class.trim import Marks, Trimmer, runs, trim_footage, trim_mask

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def quiet(n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.float64)


def test_a_hot_frame_is_left_out_alone_when_it_raises_no_event() -> None:
    scores = quiet(20)
    scores[7] = 3.0  # one hot frame: the lifecycle needs 3 of 5 to open an event
    trimmed = trim_mask(scores, cut=2.0, margin=4, fps=10.0, marks=Marks())
    assert trimmed.keep.tolist() == [i != 7 for i in range(20)]
    assert (trimmed.hot, trimmed.near_event, trimmed.cleared) == (1, 0, 0)


def test_an_event_production_raises_is_left_out_with_its_margin() -> None:
    scores = quiet(40)
    scores[10:14] = 3.0
    scores[14:18] = 1.5  # the anomaly goes on below the threshold
    trimmed = trim_mask(scores, cut=2.0, margin=5, fps=10.0, marks=Marks())
    left_out = [i for i, kept in enumerate(trimmed.keep.tolist()) if not kept]
    assert left_out == list(range(5, 19))
    assert (trimmed.hot, trimmed.near_event) == (4, 10)


def test_a_confirmed_event_is_left_out_with_its_margin_even_when_production_is_quiet() -> None:
    trimmed = trim_mask(quiet(30), cut=2.0, margin=3, fps=10.0, marks=Marks(flagged=[(10, 12)]))
    assert [i for i, kept in enumerate(trimmed.keep.tolist()) if not kept] == list(range(7, 16))


def test_a_reviewed_false_alarm_is_kept_as_normal() -> None:
    scores = quiet(30)
    scores[10:14] = 3.0
    trimmed = trim_mask(scores, cut=2.0, margin=5, fps=10.0, marks=Marks(cleared=[(11, 12)]))
    assert bool(trimmed.keep.all())
    assert (trimmed.hot, trimmed.near_event, trimmed.cleared) == (0, 0, 4)


def test_frames_not_scored_yet_are_not_hot() -> None:
    scores = torch.full((6,), float("nan"), dtype=torch.float64)
    assert bool(trim_mask(scores, cut=0.0, margin=2, fps=10.0, marks=Marks()).keep.all())


def test_runs_are_the_contiguous_kept_spans() -> None:
    keep = torch.tensor([True, True, False, True, False, False, True, True, True])
    assert runs(keep) == [(0, 1), (3, 3), (6, 8)]
    assert runs(torch.tensor([False, False])) == []


def test_the_cut_is_the_lower_of_the_threshold_and_the_calibrated_quantile() -> None:
    def model(threshold: float, metrics: dict[str, float]) -> Any:
        return SimpleNamespace(manifest=SimpleNamespace(threshold=threshold, metrics=metrics))

    assert trim.production_cut(model(2.0, {"holdout_score_p99": 1.5})) == 1.5
    assert trim.production_cut(model(1.2, {"holdout_score_p99": 1.5})) == 1.2
    assert trim.production_cut(model(1.2, {})) == 1.2


def item(group: str, index: int, label: str = "normal") -> DatasetItem:
    return DatasetItem(
        key=f"{group}/{index}",
        sha256=f"{index:064x}",
        group=group,
        label=label,
        sequence=index,
        camera_id="cam",
        captured_at=T0 + timedelta(seconds=index),
    )


def test_a_frame_production_scored_hot_never_reaches_the_candidates_banks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    footage = [item(f"cam/seg{g}", i) for g in range(3) for i in range(12)]
    event = [item("cam/event-1", 100, "abnormal")]
    dataset = DatasetManifest.model_validate(
        {
            "name": "retrain-cam",
            "version": "0" * 64,
            "source": "composed",
            "created_at": T0,
            "items": footage + event,
        }
    )
    hot = {("cam/seg0", 6), ("cam/seg1", 2)}

    def scores(model: Any, s3: Any, bucket: str, clip: Clip, *, chunk: int) -> torch.Tensor:
        return torch.tensor([3.0 if (clip.group, i.sequence) in hot else 0.0 for i in clip.items])

    monkeypatch.setattr(trim, "clip_scores", scores)
    model: Any = SimpleNamespace(manifest=SimpleNamespace(threshold=2.0, metrics={}))
    trimmer = Trimmer(
        model=model,
        s3=Any,  # type: ignore[arg-type]
        bucket="datasets",
        is_footage=is_footage,
        marks=lambda clip: Marks(),
        fps=1.0,
        min_run=3,
    )
    trimmed, report = trim_footage(dataset, trimmer)
    kept = {(i.group.split("~")[0], i.sequence) for i in trimmed.items}
    assert not kept & hot
    assert ("cam/event-1", 100) in kept  # reviewed events are not footage: never trimmed
    # seg1 frames 0-1 are a run too short for motion; every other footage frame is kept.
    assert report.left_out == {"hot": 2, "near_event": 0, "short_run": 2}
    assert report.kept_frames == 36 - 4 and len(trimmed.items) == 33
    for seed in range(5):
        split = split_clips(clips_of(trimmed), holdout_fraction=0.2, seed=seed)
        banked = {(c.group.split("~")[0], i.sequence) for c in split.fit for i in c.items}
        assert not banked & hot


def test_events_are_matched_to_frames_by_capture_time() -> None:
    clip = Clip("cam/seg", tuple(item("cam/seg", i) for i in range(10, 20)), (False,) * 10)
    events = [
        KnownEvent("cam", T0 + timedelta(seconds=12), T0 + timedelta(seconds=13), cleared=False),
        KnownEvent("cam", T0 + timedelta(seconds=16), T0 + timedelta(seconds=16), cleared=True),
        # Its frames were left out already: the frames either side of the gap carry it.
        KnownEvent("cam", T0 + timedelta(seconds=8), T0 + timedelta(seconds=9), cleared=False),
        KnownEvent("cam", T0 + timedelta(hours=1), T0 + timedelta(hours=1), cleared=False),
        KnownEvent("other", T0 + timedelta(seconds=12), T0 + timedelta(seconds=12), cleared=False),
    ]
    marks = event_marks(clip, events, margin_s=5.0)
    assert marks == Marks(flagged=[(2, 3), (0, 0)], cleared=[(6, 6)])


def labeled(groups: int, frames: int) -> list[Clip]:
    return [
        Clip(f"e{g}", tuple(item(f"e{g}", i) for i in range(frames)), (True,) * frames)
        for g in range(groups)
    ]


def test_a_handful_of_reviewed_frames_does_not_set_the_threshold() -> None:
    assert not enough_labels(labeled(8, 1))  # Ped2's retrain: 8 reviewed peak frames
    assert not enough_labels(labeled(MIN_LABELED_GROUPS - 1, 100))
    per_group = -(-MIN_LABELED_FRAMES // MIN_LABELED_GROUPS)
    assert enough_labels(labeled(MIN_LABELED_GROUPS, per_group))


def test_reviewed_false_alarms_go_to_the_banks_never_to_calibration() -> None:
    footage = [Clip(f"cam/seg{g}", (item(f"cam/seg{g}", 0),), (False,)) for g in range(5)]
    rejected = [Clip(f"cam/event-{e}", (item(f"cam/event-{e}", 0),), (False,)) for e in range(3)]
    for seed in range(10):
        split = split_clips([*footage, *rejected], holdout_fraction=0.2, seed=seed)
        assert {c.group for c in rejected} <= {c.group for c in split.fit}
        assert len(split.holdout) == 1 and split.holdout[0].group.startswith("cam/seg")
    # With no footage at all, the reviewed groups are split as footage would be.
    split = split_clips(rejected, holdout_fraction=0.2, seed=0)
    assert (len(split.fit), len(split.holdout)) == (2, 1)
