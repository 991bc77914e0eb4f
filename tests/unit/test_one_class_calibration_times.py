"""The fit scores its calibration clips as the worker scores a camera: in order, each chunk with
its frames' capture times where every frame of the clip has one, so a clip recorded at another
rate than the dataset's is taken in the model's units (``motion_pace``); a clip without them
(an uploaded archive) is taken at the footage's rate."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import torch

from vigil_shared.datasets import DatasetItem
from vigil_trainer.one_class import fit as fit_module
from vigil_trainer.one_class.clips import Clip

START = datetime(2026, 12, 7, tzinfo=UTC)


class RecordingScorer:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int, list[float] | None]] = []
        self.forgotten: list[str] = []

    def stream_scores(
        self, camera_ids: Sequence[str], images: Sequence[torch.Tensor], times: Any = None
    ) -> str:
        self.calls.append((list(camera_ids), len(images), None if times is None else list(times)))
        return "raw"

    def forget(self, camera_id: str) -> None:
        self.forgotten.append(camera_id)


def clip(group: str, frames: int, *, fps: float | None) -> Clip:
    items = tuple(
        DatasetItem(
            key=f"{group}/{i}",
            sha256="0" * 64,
            group=group,
            sequence=i,
            captured_at=None if fps is None else START + timedelta(seconds=i / fps),
        )
        for i in range(frames)
    )
    return Clip(group, items, (False,) * frames)


def test_calibration_clips_are_scored_with_their_capture_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def frames(_s3: Any, _bucket: str, c: Clip, *, chunk: int) -> Iterator[list[torch.Tensor]]:
        for start in range(0, len(c.items), chunk):
            yield [torch.zeros(3, 4, 4, dtype=torch.uint8)] * len(c.items[start : start + chunk])

    monkeypatch.setattr(fit_module, "read_frames", frames)
    run = fit_module._Run(None, "b", "cpu", 4, lambda _p: None, lambda: False)  # type: ignore[arg-type]
    scorer = RecordingScorer()
    calibration = fit_module._Calibration(run, total=16)
    timed, archive = clip("recorded", 10, fps=5.0), clip("archive", 6, fps=None)
    results = calibration.score(scorer, (timed, archive))  # type: ignore[arg-type]

    base = START.timestamp()
    assert scorer.calls == [
        (["recorded"] * 4, 4, [base + i / 5 for i in range(4)]),
        (["recorded"] * 4, 4, [base + i / 5 for i in range(4, 8)]),
        (["recorded"] * 2, 2, [base + i / 5 for i in range(8, 10)]),
        (["archive"] * 4, 4, None),
        (["archive"] * 2, 2, None),
    ]
    assert scorer.forgotten == ["recorded", "archive"]  # each clip starts as a new camera
    assert [len(r.raw) for r in results] == [3, 2] and calibration.done == 16
