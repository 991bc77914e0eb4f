"""A classify job compares itself with the production model on its held-out frames: each group
scored as one camera, with the frames' capture times when every held-out frame has one, so a
production motion model measures each group's frame rate as inference would."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest
import torch

from vigil_shared.datasets import DatasetError
from vigil_shared.vision.scoring import FrameModel, FrameScore
from vigil_trainer.classify.compare import production_scores
from vigil_trainer.classify.data import ClassifyData


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[float] | None]] = []

    def score_frames(
        self, camera_ids: Sequence[str], images: Sequence[torch.Tensor], times: Any = None
    ) -> list[FrameScore]:
        self.calls.append((list(camera_ids), None if times is None else list(times)))
        return [FrameScore(score=float(i), threshold=1.0) for i in range(len(images))]


def data(times: tuple[float | None, ...]) -> ClassifyData:
    groups = ("train",) * 4 + ("clip-a",) * 20 + ("clip-b",) * 20
    return ClassifyData(
        images=torch.zeros(len(groups), 3, 8, 8, dtype=torch.uint8),
        labels=torch.zeros(len(groups), dtype=torch.long),
        groups=groups,
        classes=("normal", "cart"),
        train_index=torch.arange(4),
        val_index=torch.arange(4, len(groups)),
        val_groups=("clip-a", "clip-b"),
        times=times,
    )


def test_held_out_frames_are_scored_with_their_capture_times() -> None:
    times = tuple(float(i) / 5 for i in range(44))
    model = Recorder()
    scores = production_scores(cast(FrameModel, model), data(times))
    assert len(scores) == 40 and len(model.calls) == 2
    (cameras, first), (_, second) = model.calls
    assert cameras == ["clip-a"] * 20 + ["clip-b"] * 12
    assert first == list(times[4:36]) and second == list(times[36:])


def test_without_a_time_for_every_held_out_frame_none_is_passed() -> None:
    partly: tuple[float | None, ...] = (0.0,) * 43 + (None,)
    for times in ((), partly):
        model = Recorder()
        production_scores(cast(FrameModel, model), data(times))
        assert [t for _, t in model.calls] == [None, None]


def test_times_must_match_the_images() -> None:
    with pytest.raises(DatasetError, match="one entry per image"):
        ClassifyData.from_tensors(
            images=torch.zeros(2, 3, 8, 8, dtype=torch.uint8),
            labels=torch.tensor([0, 1]),
            groups=["a", "b"],
            classes=["normal", "cart"],
            times=[0.0],
        )
