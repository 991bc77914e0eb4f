"""Motion features: dense optical flow between a camera's consecutive frames, pooled per cell.

Appearance alone misses what moves wrongly (a cyclist looks like a walker in one frame but
covers three times the ground). Farneback flow (OpenCV, CPU) between two grayscale frames gives
a per-pixel displacement; each cell of a fixed grid is summarised by its mean magnitude, and a
cell counts only the motion that persists over a few consecutive frames. docs/one-class.md
records why this beat a kNN memory bank of richer per-cell flow features on Ped2.

These are OpenCV's, a pair at a time on the CPU (at 360x240 Farneback costs 12-25 ms a pair on
one core). On a CUDA device the motion stream runs Farneback batched in torch instead
(``torch_farneback``: the same flow), so no frame leaves the GPU.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from torch.nn import functional

Gray = NDArray[np.uint8]
Flow = NDArray[np.float32]


@dataclass(frozen=True)
class FlowParams:
    """Farneback parameters and the frame size flow is computed at (frames are resized to it)."""

    height: int = 240
    width: int = 360
    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2
    preset: str = "ultrafast"  # DIS only: ``DIS_PRESETS``


DIS_PRESETS = {
    "ultrafast": cv2.DISOpticalFlow_PRESET_ULTRAFAST,
    "fast": cv2.DISOpticalFlow_PRESET_FAST,
    "medium": cv2.DISOpticalFlow_PRESET_MEDIUM,
}


def to_gray(image: torch.Tensor, params: FlowParams) -> Gray:
    """uint8 (C, H, W) tensor on any device to a uint8 (height, width) array at flow size."""
    frame = image.detach().to("cpu", torch.float32)
    gray = frame.mean(dim=0) if frame.shape[0] != 1 else frame[0]
    if tuple(gray.shape) != (params.height, params.width):
        gray = functional.interpolate(
            gray[None, None],
            size=(params.height, params.width),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )[0, 0]
    return gray.round().clamp_(0, 255).to(torch.uint8).numpy()


def optical_flow(previous: Gray, current: Gray, params: FlowParams) -> Flow:
    """Dense (height, width, 2) displacement in pixels from ``previous`` to ``current``."""
    flow = cv2.calcOpticalFlowFarneback(
        previous,
        current,
        np.zeros((*previous.shape, 2), dtype=np.float32),
        params.pyr_scale,
        params.levels,
        params.winsize,
        params.iterations,
        params.poly_n,
        params.poly_sigma,
        0,
    )
    return np.asarray(flow, dtype=np.float32)


def dis_flow(previous: Gray, current: Gray, params: FlowParams) -> Flow:
    """Dense inverse search flow (Kroeger et al. 2016, OpenCV): patch matching on a coarse
    grid, densified (and refined variationally by ``fast`` and ``medium``, not ``ultrafast``).
    An order of magnitude cheaper than Farneback at 360x240 (about 0.5 ms a pair at
    ``ultrafast`` against 12 on one core). A new instance per pair: it costs microseconds and
    keeps concurrent callers from sharing its buffers."""
    dis = cv2.DISOpticalFlow.create(DIS_PRESETS[params.preset])
    no_initial_flow = np.empty((0,), dtype=np.float32)  # an empty array: start from scratch
    flow = dis.calc(previous, current, no_initial_flow)
    return np.asarray(flow, dtype=np.float32)


def cell_magnitude(flows: torch.Tensor, grid: tuple[int, int], block: int = 0) -> torch.Tensor:
    """(N, H, W, 2) flow to the (N, rows, cols) mean displacement magnitude of each cell, or
    with a ``block`` size that of its fastest ``block``-pixel square (``MotionSpec.cell_block``)."""
    magnitude = flows.float().pow(2).sum(dim=-1).sqrt().unsqueeze(1)
    if block <= 0:
        return functional.adaptive_avg_pool2d(magnitude, grid).squeeze(1)
    blocks = functional.avg_pool2d(magnitude, block)
    return functional.adaptive_max_pool2d(blocks, grid).squeeze(1)


def persistent(
    maps: torch.Tensor, *, window: int, history: torch.Tensor | None = None, radius: int = 0
) -> torch.Tensor:
    """Per cell, the least motion over the trailing ``window`` maps: (N, R, C) consecutive maps,
    preceded by the (H, R, C) ``history`` of the same camera, to (N, R, C) minima.

    Flow noise (a compression artefact, a flicker) lasts a frame; a cyclist crossing a cell keeps
    it moving for several. The minimum over a short trailing window keeps the second and
    suppresses the first. A frame without a full window behind it uses what there is. With a
    ``radius``, the map ``lag`` frames back counts the most motion within ``radius * lag`` cells
    (the frame's own map stays as it is): a fast object that moves on by up to ``radius`` cells
    a frame still persists.
    """
    before = history.shape[0] if history is not None else 0
    stacked = maps if history is None else torch.cat([history.to(maps), maps])
    positions = torch.arange(maps.shape[0], device=maps.device) + before
    out = maps.clone()
    for lag in range(1, window):
        earlier = stacked[(positions - lag).clamp(min=0)]
        if radius > 0:  # an object moves on: ``radius`` cells a frame, so further back, further
            reach = radius * lag
            earlier = functional.max_pool2d(
                earlier.unsqueeze(1), 2 * reach + 1, stride=1, padding=reach
            ).squeeze(1)
        out = torch.minimum(out, earlier)
    return out


def clip_motion(frames: list[Gray], params: FlowParams, grid: tuple[int, int]) -> torch.Tensor:
    """Cell magnitudes for frames 1..n-1 of a clip (each against the frame before it)."""
    if len(frames) < 2:
        return torch.empty((0, *grid))
    flows = [torch.from_numpy(optical_flow(a, b, params)) for a, b in itertools.pairwise(frames)]
    return cell_magnitude(torch.stack(flows), grid)
