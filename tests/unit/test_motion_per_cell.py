"""Perspective-aware motion: each cell judged against its own normal level."""

from __future__ import annotations

import pytest
import torch

from vigil_shared.schemas.one_class import MotionSpec
from vigil_shared.vision.one_class_model import StreamScores, per_cell_motion
from vigil_trainer.one_class.calibrate import (
    CELL_FLOOR,
    ClipScores,
    motion_cell_scale,
    with_cell_scale,
)

SPEC = MotionSpec(flow_height=32, flow_width=32, grid_rows=2, grid_cols=2, top_k=1)


def chunk(maps: torch.Tensor) -> StreamScores:
    n = maps.shape[0]
    nan = torch.full((n,), float("nan"))
    motion = maps.flatten(1).max(dim=1).values
    motion[0] = float("nan")  # a camera's first frame: no flow yet
    return StreamScores(nan, None, motion, maps, nan, nan)


def normal_maps(frames: int) -> torch.Tensor:
    """Far cells (top row) move ten times slower than near ones (bottom row); one cell never."""
    generator = torch.Generator().manual_seed(0)
    level = torch.tensor([[0.2, 0.0], [2.0, 2.0]])
    return level * (0.5 + torch.rand((frames, 2, 2), generator=generator))


def test_slow_far_motion_outranks_ordinary_near_motion_once_per_cell() -> None:
    clips = [ClipScores(raw=[chunk(normal_maps(200))], abnormal=torch.zeros(200, dtype=torch.bool))]
    scale = motion_cell_scale(clips)
    assert scale[0, 0] < scale[1, 0] / 5  # the far cell's normal level is its own
    # The still cell is floored at a share of the median cell's level (here the far one's).
    assert float(scale[0, 1]) == pytest.approx(CELL_FLOOR * float(scale[0, 0]))
    far_runner = torch.tensor([[[1.0, 0.0], [2.0, 2.0]]])  # 5x the far cell's usual flow
    near_walker = torch.tensor([[[0.2, 0.0], [2.9, 2.9]]])  # the near cells' usual top
    raw = torch.tensor([1.0, 1.0])
    motion, _ = per_cell_motion(raw, torch.cat([far_runner, near_walker]), scale, SPEC)
    assert motion[0] > motion[1]
    assert far_runner.max() < near_walker.max()  # raw flow ranks them the other way


def test_the_fit_rescales_like_the_scorer_and_keeps_first_frames_without_motion() -> None:
    clips = [ClipScores(raw=[chunk(normal_maps(50))], abnormal=torch.zeros(50, dtype=torch.bool))]
    scale = motion_cell_scale(clips)
    (rescaled,) = with_cell_scale(clips, scale, SPEC)
    first = rescaled.raw[0]
    assert torch.isnan(first.motion[0]) and not torch.isnan(first.motion[1:]).any()
    raw_maps = clips[0].raw[0].motion_map
    assert first.motion_map is not None and raw_maps is not None
    expected = (raw_maps[1:] / scale).flatten(1).max(dim=1).values
    assert torch.allclose(first.motion[1:], expected)


def test_per_row_a_rows_busiest_cell_sets_the_level_of_all_its_cells() -> None:
    """A row's walkers set its level wherever they walk: the far row's still cell shares its
    moving neighbour's level instead of a floor that would make any flow there an anomaly."""
    clips = [ClipScores(raw=[chunk(normal_maps(200))], abnormal=torch.zeros(200, dtype=torch.bool))]
    scale = motion_cell_scale(clips, per_row=True)
    cells = motion_cell_scale(clips)
    assert scale.shape == (2, 2)
    assert torch.equal(scale[:, 0], scale[:, 1])  # one level a row
    assert float(scale[0, 0]) == pytest.approx(float(cells[0, 0]))  # the moving cell's
    assert float(scale[0, 1]) > 3 * float(cells[0, 1])  # not the still cell's floor
    assert scale[0, 0] < scale[1, 0] / 5  # the far row's level is its own
    far_cyclist = torch.tensor([[[0.6, 0.0], [2.0, 2.0]]])  # twice the far row's usual flow
    near_walker = torch.tensor([[[0.2, 0.0], [2.9, 2.9]]])
    motion, _ = per_cell_motion(
        torch.tensor([1.0, 1.0]), torch.cat([far_cyclist, near_walker]), scale, SPEC
    )
    assert motion[0] > motion[1]


def test_per_row_and_per_cell_are_one_choice() -> None:
    with pytest.raises(ValueError, match="pick one"):
        MotionSpec(per_cell=True, per_row=True)
    assert MotionSpec(per_row=True).rescaled and not MotionSpec().rescaled
