"""Farneback in torch gives OpenCV's flow: on made-up textures moving by sub-pixel amounts, on
real Ped2 frames where they are present, batched as pair by pair, and through the motion
stream (what a CUDA device runs; ``test_cuda_scoring.py`` checks it on the device)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.unit.test_torch_flow import texture
from vigil_shared.schemas.one_class import MotionSpec
from vigil_shared.vision.motion import FlowParams, cell_magnitude, optical_flow, to_gray
from vigil_shared.vision.motion_stream import MotionStream
from vigil_shared.vision.preprocess import decode
from vigil_shared.vision.torch_farneback import expand, farneback, flow_between


def grey(frames: torch.Tensor) -> torch.Tensor:
    """Whole grey levels, as the motion stream hands frames to either implementation."""
    return frames.round().clamp(0, 255)


def moving_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """Three 120 x 180 pairs: a texture shifted by sub-pixel amounts, and one with a square
    moving over a still background (motion boundaries, where the two could part)."""
    scene = texture(200, 260)
    previous, current = [], []
    for dx, dy in [(1.5, -1), (-3.25, 2)]:
        whole = torch.roll(scene, shifts=(dy, math.floor(dx)), dims=(0, 1))
        moved = torch.lerp(whole, torch.roll(whole, 1, dims=1), dx % 1)  # the rest, bilinear
        previous.append(scene[40:160, 40:220])
        current.append(moved[40:160, 40:220])
    still = texture(120, 180, seed=1)
    square = texture(30, 30, seed=2) * 0.5 + 100
    first, second = still.clone(), still.clone()
    first[40:70, 50:80], second[44:74, 57:87] = square, square
    generator = torch.Generator().manual_seed(3)  # a sensor's noise: no two frames are equal
    second += torch.randn(second.shape, generator=generator)
    previous.append(first)
    current.append(second)
    return grey(torch.stack(previous)), grey(torch.stack(current))


def opencv(previous: torch.Tensor, current: torch.Tensor, params: FlowParams) -> torch.Tensor:
    flows = [
        optical_flow(a.to(torch.uint8).numpy(), b.to(torch.uint8).numpy(), params)
        for a, b in zip(previous, current, strict=True)
    ]
    return torch.from_numpy(np.stack(flows))


def test_the_flow_is_opencvs_within_float_rounding() -> None:
    previous, current = moving_pairs()
    params = FlowParams(height=120, width=180)
    expected = opencv(previous, current, params)
    flow = farneback(previous, current, params)
    assert flow.shape == expected.shape
    error = (flow - expected).norm(dim=-1)
    assert float(expected.norm(dim=-1).max()) > 3  # it moves
    assert float(error.mean()) < 1e-4 and float(error.max()) < 1e-3


def test_a_batch_is_each_pair_alone() -> None:
    previous, current = moving_pairs()
    together = farneback(previous, current)
    for i in range(previous.shape[0]):
        alone = farneback(previous[i : i + 1], current[i : i + 1])
        torch.testing.assert_close(together[i : i + 1], alone, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "params",
    [
        FlowParams(height=120, width=180, levels=1, iterations=1),
        FlowParams(height=120, width=180, winsize=9, poly_n=7, poly_sigma=1.5),
    ],
)
def test_other_parameters_are_opencvs_too(params: FlowParams) -> None:
    previous, current = moving_pairs()
    expected = opencv(previous, current, params)
    flow = farneback(previous, current, params)
    assert float((flow - expected).norm(dim=-1).max()) < 1e-3


def test_refuses_mismatched_frames() -> None:
    with pytest.raises(ValueError, match="alike"):
        farneback(torch.zeros(1, 32, 32), torch.zeros(2, 32, 32))


def test_the_motion_stream_scores_the_same_with_either_implementation() -> None:
    """What a CUDA device runs (Farneback in torch), run here on the CPU, against OpenCV."""
    spec = MotionSpec(flow_height=120, flow_width=180, grid_rows=6, grid_cols=9)
    previous, current = moving_pairs()
    frames = [f.to(torch.uint8)[None].expand(3, -1, -1) for f in [*previous, *current]]
    cameras = ["a", "b", "c"] * 2
    results = []
    for in_torch in (False, True):
        stream = MotionStream(spec.model_copy(update={"full_window": False}), "cpu")
        assert not stream.in_torch  # a CPU device uses OpenCV by default
        stream.in_torch = in_torch
        results.append(stream(cameras, frames))
    (scores_cv, maps_cv), (scores_torch, maps_torch) = results
    torch.testing.assert_close(maps_torch, maps_cv, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(scores_torch, scores_cv, rtol=1e-3, atol=1e-3, equal_nan=True)
    assert bool((maps_cv[3:] > 0).any())  # the second frames of each camera moved


def test_a_frame_is_expanded_once_and_its_camera_keeps_the_expansion() -> None:
    """The stream expands each frame once and keeps a camera's last expansion between batches
    (state saved and restored on the way): every pair's cells are those of a fresh call on the
    two frames, whichever batch each frame came in."""
    spec = MotionSpec(flow_height=120, flow_width=180, grid_rows=6, grid_cols=9)
    previous, current = moving_pairs()
    a = [previous[0], current[0], previous[1], current[1]]  # one camera's four frames
    b = [previous[2], current[2], previous[0]]
    raw = spec.model_copy(update={"full_window": False, "persistence": 1})  # maps are the cells
    stream = MotionStream(raw, "cpu")
    stream.in_torch = True
    batches = [(["a", "b", "a"], [a[0], b[0], a[1]]), (["b", "a"], [b[1], a[2]])]
    batches.append((["a", "b", "b"], [a[3], b[2], b[2]]))
    maps = []
    for number, (cameras, frames) in enumerate(batches):
        images = [f.to(torch.uint8)[None].expand(3, -1, -1) for f in frames]
        if number == 1:  # a batch that failed elsewhere leaves no trace: scored again
            saved = stream.save(["a", "b"])
            stream(cameras, images)
            stream.restore(saved)
        maps.append(stream(cameras, images)[1])
    got = torch.stack([maps[0][2], maps[1][0], maps[1][1], maps[2][0], maps[2][1], maps[2][2]])
    first = torch.stack([a[0], b[0], a[1], a[2], b[1], b[2]])
    second = torch.stack([a[1], b[1], a[2], a[3], b[2], b[2]])
    expected = cell_magnitude(farneback(first, second, stream.params), (6, 9))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    kept = stream._cameras["a"].previous
    assert len(kept) == 1 and len(kept[-1]) == 2  # a pyramid of expansions, not a frame


def test_the_flow_from_expansions_is_the_flow() -> None:
    previous, current = moving_pairs()
    params = FlowParams(height=120, width=180)
    levels = expand(torch.cat([previous, current]), params)
    assert [tuple(level.shape) for level in levels] == [
        (6, 5, 60, 90),
        (6, 5, 120, 180),
    ]
    flow = flow_between([x[:3] for x in levels], [x[3:] for x in levels], params)
    torch.testing.assert_close(flow, farneback(previous, current, params))
    with pytest.raises(ValueError, match="levels"):
        flow_between(levels[:1], levels, params)
    with pytest.raises(ValueError, match="alike"):
        flow_between(levels, [x[:2] for x in levels], params)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        expand(previous[0], params)


def test_on_ped2_frames_the_flow_is_opencvs(ped2: Path) -> None:
    """Real footage: a cyclist entering Test001 among walkers, at the default flow size."""
    params = FlowParams()
    paths = sorted((ped2 / "test_frames" / "Test001").glob("*.jpg"))[60:69]
    frames = torch.stack(
        [torch.from_numpy(to_gray(decode(p.read_bytes()), params)).float() for p in paths]
    )
    expected = opencv(frames[:-1], frames[1:], params)
    error = (farneback(frames[:-1], frames[1:]) - expected).norm(dim=-1)
    assert float(expected.norm(dim=-1).max()) > 1  # they move
    assert float(error.mean()) < 1e-4 and float(error.max()) < 0.01
