"""Long normal footage cut into groups for the fit's split (``segment_s``): one recording of a
camera calibrates as separate clips of it would, and nothing else is cut."""

from __future__ import annotations

import datetime as dt

import pytest

from vigil_api.domain.retrain import fit_groups
from vigil_shared.dataset_groups import event_group, footage_rate
from vigil_shared.datasets import DatasetItem, NewImage
from vigil_shared.schemas.jobs import ClassifySpec
from vigil_shared.schemas.one_class import OneClassSpec, with_stored_defaults
from vigil_trainer.one_class.clips import Clip, segmented, split_clips

START = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
DATASET = {"name": "d", "version": "0" * 64}


def _item(group: str, index: int, *, fps: float | None, label: str | None = None) -> DatasetItem:
    return DatasetItem(
        key=f"{group}/{index:06d}.jpg",
        sha256="0" * 64,
        group=group,
        sequence=index,
        label=label,
        captured_at=None if fps is None else START + dt.timedelta(seconds=index / fps),
    )


def _clip(group: str, n: int, *, fps: float | None = 10.0, abnormal: bool = False) -> Clip:
    items = tuple(_item(group, i, fps=fps) for i in range(n))
    return Clip(group, items, (abnormal,) * n)


def test_an_hour_of_one_camera_becomes_groups_of_about_the_segment() -> None:
    (hour,) = [_clip("cam/20261207T120000.000Z", 36_000)]  # one hour at 10 fps, one group
    pieces = segmented([hour], fps=10.0, segment_s=30.0)
    assert len(pieces) == 120
    assert {len(p.items) for p in pieces} == {300}
    assert pieces[0].group == "cam/20261207T120000.000Z#001" and pieces[-1].group.endswith("#120")
    assert [i for p in pieces for i in p.items] == list(hour.items)  # every frame, in order
    split = split_clips(pieces, holdout_fraction=0.2, seed=0)
    assert (len(split.fit), len(split.holdout)) == (96, 24)


def test_frames_at_the_footages_rate_decide_so_a_silence_makes_no_short_piece() -> None:
    # 65 s of frames at 10 fps with a 30 s silence after the first 30 s.
    gap = tuple(
        _item("cam/a", i, fps=10.0).model_copy(
            update={"captured_at": START + dt.timedelta(seconds=i / 10 + (30 if i >= 300 else 0))}
        )
        for i in range(650)
    )
    pieces = segmented([Clip("cam/a", gap, (False,) * 650)], fps=10.0, segment_s=30.0)
    assert [len(p.items) for p in pieces] == [325, 325]
    archive = _clip("upload", 650, fps=None)  # no capture times: 65 s at the footage's rate
    assert [len(p.items) for p in segmented([archive], fps=10.0, segment_s=30.0)] == [325, 325]
    assert len(segmented([archive], fps=5.0, segment_s=30.0)) == 4  # 130 s at 5 fps


def test_short_labeled_and_event_clips_stay_whole() -> None:
    short = _clip("cam/short", 599)  # 59.9 s: under twice the segment
    labeled = _clip("cam/labeled", 3000, abnormal=True)
    reviewed = _clip(event_group("cam", "e1"), 3000)
    kept = segmented([short, labeled, reviewed], fps=10.0, segment_s=30.0)
    assert [c.group for c in kept] == [short.group, labeled.group, reviewed.group]
    assert segmented([_clip("cam/b", 6000)], fps=10.0, segment_s=None)[0].group == "cam/b"


def test_the_default_cuts_and_a_stored_spec_without_it_was_fitted_uncut() -> None:
    fresh = OneClassSpec.model_validate({"name": "s", "dataset": DATASET})
    assert fresh.segment_s == pytest.approx(30.0)
    stored = with_stored_defaults({"name": "s", "dataset": DATASET})
    assert OneClassSpec.model_validate(stored).segment_s is None
    with pytest.raises(ValueError, match="segment_s"):
        OneClassSpec.model_validate({"name": "s", "dataset": DATASET, "segment_s": 1})


def _frames(group: str, seconds: int, *, fps: float, label: str = "normal") -> list[NewImage]:
    at = START + dt.timedelta(hours=len(group))  # segments apart in time, as the route groups
    return [
        NewImage(b"", "jpg", group, label, i, "cam", at + dt.timedelta(seconds=i / fps))
        for i in range(int(seconds * fps))
    ]


def test_a_retrain_counts_the_groups_its_fit_will_cut() -> None:
    """One hour-segment of a camera is one group as stored; the route asks the fit's rule, so
    two minutes of it are 4 groups for a one_class spec and still one for others."""
    minutes = _frames("cam/a", 120, fps=2.0)
    reviewed = _frames(event_group("cam", "e1"), 1, fps=2.0, label="abnormal")
    one_class = OneClassSpec.model_validate({"name": "s", "dataset": DATASET})
    assert fit_groups(minutes + reviewed, one_class) == 4
    uncut = one_class.model_copy(update={"segment_s": None})
    assert fit_groups(minutes + reviewed, uncut) == 1
    classify = ClassifySpec.model_validate({"name": "s", "dataset": DATASET})
    assert fit_groups(minutes, classify) == 1
    # Under a minute is not cut (as the trainer's ``segmented``); two such segments make two.
    short = _frames("cam/bb", 59, fps=2.0)
    assert fit_groups(short, one_class) == 1
    assert fit_groups(short + _frames("cam/ccc", 10, fps=2.0), one_class) == 2


def test_the_footage_rate_is_read_within_groups() -> None:
    """A silence between groups, or inside one, is not a frame interval."""
    times = [[START + dt.timedelta(seconds=i / 5) for i in range(10)]] * 3
    assert footage_rate(times) == pytest.approx(5.0)
    assert footage_rate([[None, None]], 12.5) == pytest.approx(12.5)
    assert footage_rate([]) == pytest.approx(10.0)
