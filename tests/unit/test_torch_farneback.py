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
from vigil_shared.vision.motion import FlowParams, optical_flow, to_gray
from vigil_shared.vision.motion_stream import MotionStream
from vigil_shared.vision.preprocess import decode
from vigil_shared.vision.torch_farneback import farneback


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
