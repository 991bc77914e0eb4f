"""Motion in torch: Lucas-Kanade recovers known displacements, and the batched motion stream
gives what frame-by-frame scoring gives, with either flow method."""

from __future__ import annotations

import pytest
import torch

from vigil_shared.schemas.one_class import MotionSpec
from vigil_shared.vision.motion_stream import MotionStream
from vigil_shared.vision.torch_flow import lucas_kanade


def texture(height: int = 140, width: int = 200, *, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand((1, 1, height, width), generator=generator) * 255
    return torch.nn.functional.avg_pool2d(noise, 5, 1, 2)[0, 0]


@pytest.mark.parametrize(("dx", "dy"), [(3, -2), (0, 5), (-6, 1)])
def test_lucas_kanade_recovers_a_translation(dx: int, dy: int) -> None:
    scene = texture()
    previous = scene[20:120, 20:180]
    current = scene[20 - dy : 120 - dy, 20 - dx : 180 - dx]  # content moved by (dx, dy)
    flow = lucas_kanade(previous[None], current[None])
    inner = flow[0, 15:-15, 15:-15].reshape(-1, 2)
    assert inner.median(dim=0).values.tolist() == pytest.approx([dx, dy], abs=0.1)


def test_a_static_or_flat_pair_has_no_flow() -> None:
    scene = texture()[None]
    assert float(lucas_kanade(scene, scene).abs().max()) < 1e-3
    flat = torch.full((1, 64, 64), 90.0)
    assert float(lucas_kanade(flat, flat + 0.5).abs().max()) < 0.05


def test_lucas_kanade_refuses_mismatched_frames() -> None:
    with pytest.raises(ValueError, match="alike"):
        lucas_kanade(torch.zeros(1, 32, 32), torch.zeros(2, 32, 32))


def camera_frames(camera: int, count: int) -> list[torch.Tensor]:
    """A textured scene with a bright square moving 4 pixels a frame, as uint8 RGB frames."""
    frames = []
    for step in range(count):
        gray = texture(96, 128, seed=camera).clone()
        x = 20 + 4 * step
        gray[40:60, x : x + 20] = texture(20, 20, seed=99) * 0.3 + 170
        frames.append(gray.round().to(torch.uint8).expand(3, -1, -1).clone())
    return frames


SPEC = {"flow_height": 96, "flow_width": 128, "grid_rows": 6, "grid_cols": 8, "top_k": 2}


@pytest.mark.parametrize("method", ["farneback", "lucas_kanade", "dis"])
def test_a_batch_of_cameras_scores_as_frame_by_frame(method: str) -> None:
    spec = MotionSpec.model_validate(SPEC | {"method": method, "persistence": 2})
    frames = {camera: camera_frames(camera, 5) for camera in (1, 2)}
    order = [(camera, step) for step in range(5) for camera in (1, 2)]
    ids = [f"cam{camera}" for camera, _ in order]
    images = [frames[camera][step] for camera, step in order]
    batched = MotionStream(spec, "cpu")
    head = batched(ids[:3], images[:3])
    tail = batched(ids[3:], images[3:])
    scores = torch.cat([head[0], tail[0]])
    maps = torch.cat([head[1], tail[1]])
    single = MotionStream(spec, "cpu")
    for index, (camera_id, image) in enumerate(zip(ids, images, strict=True)):
        score, cell_map = single([camera_id], [image])
        torch.testing.assert_close(score, scores[index : index + 1], equal_nan=True)
        torch.testing.assert_close(cell_map, maps[index : index + 1])
    # Each camera's first frame and first flow (no full persistence window of 2 behind it).
    assert scores[:4].isnan().all() and not scores[4:].isnan().any()


@pytest.mark.parametrize(
    "fields",
    [
        {"method": "lucas_kanade"},
        {"method": "dis", "preset": "ultrafast"},
        {"method": "dis", "preset": "fast"},
        {"method": "dis", "preset": "medium"},
    ],
)
def test_motion_finds_the_moving_square_only(fields: dict[str, str]) -> None:
    spec = MotionSpec.model_validate(SPEC | fields | {"persistence": 1})
    stream = MotionStream(spec, "cpu")
    _, maps = stream(["cam"] * 5, camera_frames(0, 5))
    last = maps[-1]
    row, col = divmod(int(last.argmax()), 8)
    assert row in (2, 3) and 2 <= col <= 4  # the square: rows 40-60, columns 36-56 of the last
    assert float(last.max()) > 1.0  # the square moves 4 pixels a frame
    # The top row of cells is static background: what reaches it is the coarse levels' blur.
    assert float(last.max()) > 5 * float(last[0].max())
    stream.forget("cam")
    score, _ = stream(["cam"], camera_frames(0, 1))
    assert score.isnan().all()  # forgotten: the next frame is a first frame again
    scores, _ = stream(["still"] * 3, [camera_frames(0, 1)[0]] * 3)
    assert float(scores[1:].max()) < 0.05  # a still scene has no motion


def test_a_full_window_leaves_a_cameras_first_flows_unscored() -> None:
    frames = camera_frames(1, 7)
    ids = ["cam"] * len(frames)
    partial_spec = MotionSpec.model_validate(SPEC | {"persistence": 3, "full_window": False})
    partial = MotionStream(partial_spec, "cpu")
    spec = MotionSpec.model_validate(SPEC | {"persistence": 3})  # full_window by default
    full = MotionStream(spec, "cpu")
    partial_scores, partial_maps = partial(ids, frames)
    head, tail = full(ids[:2], frames[:2]), full(ids[2:], frames[2:])  # across micro-batches
    scores, maps = torch.cat([head[0], tail[0]]), torch.cat([head[1], tail[1]])
    assert partial_scores[0].isnan() and (partial_scores[1:] > 0).all()
    # The first frame and the two flows without a window of 3 behind them: no motion yet.
    assert scores[:3].isnan().all() and (maps[:3] == 0).all()
    torch.testing.assert_close(scores[3:], partial_scores[3:])
    torch.testing.assert_close(maps[3:], partial_maps[3:])
    full.forget("cam")  # a forgotten camera (a reconnect, a new model) waits again
    again, _ = full(ids[:4], frames[:4])
    assert again[:3].isnan().all() and not again[3].isnan()
