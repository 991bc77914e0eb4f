"""The Ped2 loop's simulated reviewer and the retrain's evidence: events overlapping an anomaly
are confirmed, others rejected; confirmed spans are flagged for the trim, rejected ones
cleared; the frame rate is read from
capture times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import torch

from bench.ped2_loop import SplitClip, review_events, review_images, review_marks
from vigil_shared.dataset_groups import DEFAULT_FPS
from vigil_shared.datasets import DatasetItem
from vigil_trainer.one_class.clips import Clip, frame_rate
from vigil_trainer.one_class.trim import Marks


def clip(tmp_path: Path, labels: list[bool]) -> SplitClip:
    paths = []
    for index in range(len(labels)):
        path = tmp_path / f"{index:03d}.jpg"
        path.write_bytes(bytes([index]))
        paths.append(path)
    return SplitClip("Test009", paths, torch.tensor(labels), cut=len(labels))


def test_events_on_an_anomaly_are_confirmed_and_the_others_rejected(tmp_path: Path) -> None:
    labels = [False] * 10 + [True] * 10 + [False] * 10
    scores = torch.zeros(30, dtype=torch.float64)
    scores[2:6] = 5.0  # a false alarm
    scores[12:16] = torch.tensor([5.0, 6.0, 9.0, 5.0], dtype=torch.float64)  # the anomaly
    reviews = review_events(clip(tmp_path, labels), scores, threshold=1.0)
    assert [(r.confirmed, r.peak) for r in reviews] == [(False, 2), (True, 14)]

    images = review_images(clip(tmp_path, labels), reviews)
    footage = [i for i in images if i.group == "Test009-review"]
    # The whole window is footage; the trim leaves the confirmed span out and keeps the rejected.
    assert [i.sequence for i in footage] == list(range(30))
    marks = review_marks(reviews)["Test009-review"]
    assert marks == Marks(flagged=[(12, 15)], cleared=[(2, 5)])
    events = [(i.group, i.label, i.sequence) for i in images if i.group != "Test009-review"]
    assert events == [("Test009-event-2", "normal", 2), ("Test009-event-12", "abnormal", 14)]


def item(second: float | None) -> DatasetItem:
    at = None if second is None else datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=second)
    return DatasetItem(key="k", sha256="0" * 64, group="g", captured_at=at)


def test_the_frame_rate_is_the_median_spacing_of_capture_times() -> None:
    spaced = Clip("g", tuple(item(s) for s in (0, 0.5, 1.0, 1.5, 60)), (False,) * 5)
    assert frame_rate([spaced]) == 2.0
    undated = Clip("g", (item(None), item(None)), (False, False))
    assert frame_rate([undated]) == DEFAULT_FPS
    assert frame_rate([undated], 5.0) == 5.0  # a spec's footage_fps, for an uploaded archive
    assert frame_rate([spaced], 5.0) == 2.0  # capture times are what the footage says
