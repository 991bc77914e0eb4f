"""Registry models judged on a labeled dataset's held-out frames see each group as a camera:
in order, with the frames' capture times where every frame of the group has one (a motion
model measures the group's frame rate from them), without them otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import torch

from vigil_shared.datasets import DatasetItem
from vigil_shared.vision.scoring import FrameModel, FrameScore
from vigil_trainer.classify import held_out as held_out_module
from vigil_trainer.classify.held_out import HeldOut, score_held_out

START = datetime(2026, 12, 7, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, list[float] | None]] = []

    def score_frames(
        self, camera_ids: Sequence[str], images: Sequence[torch.Tensor], times: Any = None
    ) -> list[FrameScore]:
        self.calls.append((camera_ids[0], len(images), None if times is None else list(times)))
        return [FrameScore(score=float(len(self.calls)), threshold=1.0) for _ in images]

    def forget(self, camera_id: str) -> None:
        pass


def item(group: str, index: int, at: datetime | None) -> DatasetItem:
    return DatasetItem(
        key=f"{group}/{index}", sha256="0" * 64, group=group, sequence=index, captured_at=at
    )


def test_groups_are_scored_with_their_capture_times(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(held_out_module, "_decode", lambda *_: torch.zeros(3, 4, 4))
    recorded = [item("rec", i, START + timedelta(seconds=i / 5)) for i in range(20)]
    partly = [item("mixed", 0, START), item("mixed", 1, None)]
    items = tuple(recorded + partly)
    held = HeldOut(
        items=items, positives=torch.zeros(len(items), dtype=torch.bool), groups=("rec", "mixed")
    )
    model = Recorder()
    scores = score_held_out(
        {"m": cast(FrameModel, model)},
        held,
        s3=cast(Any, None),
        bucket="b",
        progress=lambda _: None,
        should_stop=lambda: False,
    )
    base = START.timestamp()
    assert model.calls == [
        ("rec", 16, [base + i / 5 for i in range(16)]),
        ("rec", 4, [base + i / 5 for i in range(16, 20)]),
        ("mixed", 2, None),  # one frame without a time: the group is taken at the model's rate
    ]
    assert scores["m"].tolist() == [1.0] * 16 + [2.0] * 4 + [3.0] * 2
