"""Motion features respond to motion, not to a static scene, and persistence drops flicker."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vigil_shared.schemas.one_class import MotionSpec
from vigil_shared.vision.motion import (
    FlowParams,
    cell_magnitude,
    clip_motion,
    persistent,
    to_gray,
)

PARAMS = FlowParams(height=96, width=128)
GRID = (6, 8)


def scene(blob_x: int, *, seed: int = 0) -> np.ndarray:
    """A textured static background with a bright textured square whose left edge is blob_x."""
    rng = np.random.default_rng(seed)
    frame = (rng.random((96, 128)) * 60 + 40).astype(np.uint8)
    frame = np.asarray(
        torch.nn.functional.avg_pool2d(torch.from_numpy(frame).float()[None, None], 3, 1, 1)[0, 0]
        .round()
        .to(torch.uint8)
    )
    patch = (np.random.default_rng(1).random((20, 20)) * 80 + 170).astype(np.uint8)
    frame[40:60, blob_x : blob_x + 20] = patch
    return frame


def test_static_scene_has_no_motion() -> None:
    frames = [scene(30) for _ in range(4)]
    assert float(clip_motion(frames, PARAMS, GRID).max()) < 0.05


def test_moving_blob_moves_its_cells_only() -> None:
    frames = [scene(20 + 4 * i) for i in range(5)]
    maps = clip_motion(frames, PARAMS, GRID)
    assert maps.shape == (4, *GRID)
    last = maps[-1]
    row, col = divmod(int(last.argmax()), GRID[1])
    assert row in (2, 3, 4)  # the square spans rows 40-60 of 96 (cells of 16 pixels)
    assert 2 <= col <= 4  # and columns 32-52 of 128 in the last frame (cells of 16)
    assert float(last.max()) > 1.0
    assert float(last[0].max()) < 0.2  # the top row of cells is static background


def test_persistence_suppresses_a_one_frame_flicker() -> None:
    maps = torch.zeros(6, 2, 2)
    maps[3, 0, 0] = 5.0  # one frame of noise
    maps[1:, 1, 1] = 3.0  # steady motion from frame 1 on
    out = persistent(maps, window=3)
    assert float(out[:, 0, 0].max()) == 0.0
    assert out[3:, 1, 1].tolist() == [3.0, 3.0, 3.0]


def test_persistence_continues_across_batches_with_history() -> None:
    maps = torch.rand(8, 3, 3)
    whole = persistent(maps, window=4)
    split = persistent(maps[5:], window=4, history=maps[2:5])
    torch.testing.assert_close(split, whole[5:])


@pytest.mark.parametrize("speed", [1, 2])
def test_a_radius_lets_persistence_follow_an_object_that_moves_on(speed: int) -> None:
    """A fast object is in each cell for a frame; with a radius of its speed (cells a frame) it
    persists where it is, and a one-frame flicker beside it still does not."""
    maps = torch.zeros(6, 3, 14)
    for t in range(6):
        maps[t, 1, speed * t] = 4.0
    maps[4, 2, 0] = 5.0  # one frame of noise, far from the object's path
    assert float(persistent(maps, window=4)[4].max()) == 0.0
    followed = persistent(maps, window=4, radius=speed)
    assert float(followed[4, 1, speed * 4]) == 4.0 and float(followed[4, 2, 0]) == 0.0
    too_slow = persistent(maps, window=4, radius=speed - 1) if speed > 1 else None
    assert too_slow is None or float(too_slow[4].max()) == 0.0
    split = persistent(maps[4:], window=4, history=maps[1:4], radius=speed)
    torch.testing.assert_close(split, followed[4:])


def test_gray_conversion_resizes_any_frame_to_flow_size() -> None:
    image = torch.full((3, 50, 70), 200, dtype=torch.uint8)
    gray = to_gray(image, PARAMS)
    assert gray.shape == (96, 128) and gray.dtype == np.uint8 and int(gray[10, 10]) == 200


def test_cell_magnitude_averages_each_cell() -> None:
    flows = torch.zeros(1, 96, 128, 2)
    flows[0, :16, :16, 0] = 3.0
    flows[0, :16, :16, 1] = 4.0
    maps = cell_magnitude(flows, GRID)
    assert float(maps[0, 0, 0]) == 5.0 and float(maps[0, 1:, :].abs().max()) == 0.0


def test_a_cell_block_judges_a_small_object_at_its_own_speed() -> None:
    """A 4-pixel object moving 3 px a frame in one corner of a 16-pixel cell: the cell's mean
    dilutes its speed 16 times, its fastest 4-pixel block does not."""
    flows = torch.zeros(1, 32, 32, 2)
    flows[0, 4:8, 8:12, 0] = 3.0
    mean = cell_magnitude(flows, (2, 2))
    block = cell_magnitude(flows, (2, 2), block=4)
    assert mean[0].tolist() == [[pytest.approx(3.0 / 16), 0.0], [0.0, 0.0]]
    assert block[0].tolist() == [[3.0, 0.0], [0.0, 0.0]]
    assert cell_magnitude(flows, (2, 2), block=8)[0, 0, 0] == pytest.approx(3.0 / 4)


def test_a_cell_block_must_fit_in_a_cell() -> None:
    assert MotionSpec(cell_block=8).cell_block == 8  # 16 px cells at 240 x 360 and 15 x 23
    with pytest.raises(ValueError, match="larger than a cell"):
        MotionSpec(cell_block=20)
