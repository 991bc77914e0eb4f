"""The one_class model's motion stream over batches: per-camera state, flow, cell maps.

A batch holds frames of many cameras, several of one camera included. Each frame's flow is
taken against its camera's frame before it (earlier in the batch, or the last one of an earlier
batch, kept on the model's device), so all flows of a batch are computed together: one batched
call with ``lucas_kanade`` (torch, on the model's device: on CUDA no frame leaves the GPU), or
pair by pair with ``farneback`` or ``dis`` (OpenCV, on the CPU). On a CUDA device ``farneback``
runs batched in torch instead (``torch_farneback``: OpenCV's algorithm step by step, the same
flow within float rounding), so the default method keeps motion on the GPU too; on a CPU
OpenCV's C++ is faster and runs. There each frame is expanded once (``expand``), and a camera
keeps its last frame's expansion rather than the frame, where OpenCV expands both frames of
every pair. Persistence then runs per camera in arrival order over the small cell maps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional

from vigil_shared.schemas.one_class import MotionSpec
from vigil_shared.vision.motion import (
    FlowParams,
    cell_magnitude,
    dis_flow,
    optical_flow,
    persistent,
)
from vigil_shared.vision.motion_pace import CameraPace, Step, assumed_step, step_for
from vigil_shared.vision.torch_farneback import expand, flow_between
from vigil_shared.vision.torch_flow import lucas_kanade

# Frame pairs per torch flow call: bounds the memory of a large batch (Farneback holds about
# 14 MB a pair at 360x240); on CUDA a larger chunk spreads each call's ~200 kernel launches.
_FLOW_CHUNK = {"cpu": 8, "cuda": 64}
_OPENCV = {"farneback": optical_flow, "dis": dis_flow}  # on the CPU, a pair at a time

# What the flow needs of a frame, batch-first: its grey frame at flow size, or, with Farneback in
# torch, each pyramid level's polynomial expansion (``expand``).
FlowInputs = tuple[torch.Tensor, ...]


@dataclass
class _CameraMotion:
    # its last ``step.stride`` frames' flow inputs, on the device
    previous: deque[FlowInputs] = field(default_factory=deque)
    maps: deque[torch.Tensor] = field(default_factory=deque)  # its recent (rows, cols) maps
    pace: CameraPace = field(default_factory=CameraPace)
    step: Step | None = None  # None until its rate is measured: the stream's ``unmeasured``

    def copy(self) -> _CameraMotion:
        return _CameraMotion(deque(self.previous), deque(self.maps), self.pace.copy(), self.step)

    def chain(self, step: Step) -> list[torch.Tensor]:
        """The maps the persistence window takes before this frame's, oldest first: every
        ``stride``-th back, ``window - 1`` of them (fewer after a start)."""
        back = [self.maps[-lag] for lag in range(step.stride, len(self.maps) + 1, step.stride)]
        return back[: step.window - 1][::-1]

    def keep(self, step: Step) -> None:
        """Only the maps a later frame's chain can take."""
        while len(self.maps) > (step.window - 1) * step.stride:
            self.maps.popleft()


def flow_params(motion: MotionSpec | None) -> FlowParams:
    if motion is None:
        return FlowParams()
    return FlowParams(
        height=motion.flow_height,
        width=motion.flow_width,
        levels=motion.levels,
        winsize=motion.winsize,
        iterations=motion.iterations,
        preset=motion.preset,
    )


def gray_frames(images: Sequence[torch.Tensor], params: FlowParams, device: str) -> torch.Tensor:
    """uint8 (C, H, W) frames to (N, height, width) float grey levels on ``device``, each
    rounded to a whole grey level (what Farneback's uint8 input holds); frames of one size are
    converted together."""
    out = torch.empty((len(images), params.height, params.width), device=device)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        by_shape.setdefault(tuple(image.shape), []).append(index)
    for indices in by_shape.values():
        batch = torch.stack([images[i] for i in indices]).to(device, torch.float32)
        gray = batch.mean(dim=1, keepdim=True) if batch.shape[1] != 1 else batch
        if tuple(gray.shape[-2:]) != (params.height, params.width):
            gray = functional.interpolate(
                gray,
                size=(params.height, params.width),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        out[indices] = gray[:, 0].round().clamp_(0, 255)
    return out


class MotionStream:
    """Cell-motion maps of a batch, and each camera's state between batches."""

    def __init__(
        self,
        spec: MotionSpec,
        device: str,
        *,
        units_fps: float | None = None,
        footage_fps: float | None = None,
    ) -> None:
        """``units_fps``: the frame rate the model's motion is in (``motion_pace``); frames
        given capture times are judged in its units. ``footage_fps``: the rate of the footage
        it was fitted on, at which frames without capture times are taken."""
        self.spec = spec
        self.device = device
        self.units_fps = units_fps
        self.params = flow_params(spec)
        self.unmeasured = assumed_step(
            units_fps=units_fps, footage_fps=footage_fps, persistence=spec.persistence
        )
        self._cameras: dict[str, _CameraMotion] = {}
        # Farneback stays on a CUDA device (batched torch); elsewhere OpenCV, a pair at a time.
        self.in_torch = spec.method == "lucas_kanade" or (
            spec.method == "farneback" and torch.device(device).type == "cuda"
        )

    def forget(self, camera_id: str) -> None:
        self._cameras.pop(camera_id, None)

    def save(self, camera_ids: Sequence[str]) -> dict[str, _CameraMotion | None]:
        """The state of these cameras as it is now, for ``restore`` (a few small tensors each:
        a batch replaces a camera's previous frame rather than writing into it)."""
        saved: dict[str, _CameraMotion | None] = {}
        for camera_id in camera_ids:
            state = self._cameras.get(camera_id)
            saved[camera_id] = None if state is None else state.copy()
        return saved

    def restore(self, saved: dict[str, _CameraMotion | None]) -> None:
        """Back to a ``save``: a batch that failed elsewhere leaves no trace in its cameras'
        motion, so scoring its frames again (one by one, to find the bad one) sees them as new."""
        for camera_id, state in saved.items():
            if state is None:
                self._cameras.pop(camera_id, None)
            else:
                self._cameras[camera_id] = state

    def __call__(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N,) raw motion scores and (N, rows, cols) maps, on the CPU; a camera's first frame
        (with ``full_window``, each frame before its persistence window is full) gets NaN and a
        zero map. ``times``: the frames' capture times in seconds, which put a camera running at
        another rate than the fit's footage in the fit's units (``motion_pace``)."""
        grid = (self.spec.grid_rows, self.spec.grid_cols)
        inputs = self.flow_inputs(gray_frames(images, self.params, self.device))
        pairs, previous, steps, restarts = self._pairs(camera_ids, inputs, times)
        cells = torch.zeros((len(images), *grid))
        if pairs:
            index = torch.tensor(pairs)
            before = tuple(torch.stack(part) for part in zip(*previous, strict=True))
            cells[index] = self._cell_motion(before, tuple(t[index] for t in inputs), grid)
            cells[index] *= torch.tensor([steps[i].scale for i in pairs]).view(-1, 1, 1)
        scores = torch.full((len(images),), float("nan"))
        maps = torch.zeros((len(images), *grid))
        paired = set(pairs)
        for i, camera_id in enumerate(camera_ids):
            state, step = self._cameras[camera_id], steps[i]
            if i in restarts:
                state.maps.clear()
            if i not in paired:
                continue
            chain = state.chain(step)
            maps[i] = persistent(
                cells[i : i + 1],
                window=step.window,
                history=torch.stack(chain) if chain else None,
                radius=self.spec.persistence_radius,
            )[0]
            if self.spec.full_window and len(chain) < step.window - 1:
                maps[i] = 0.0  # as a first frame: no motion to judge yet
            else:
                flat = maps[i].flatten()
                scores[i] = flat.topk(min(self.spec.top_k, flat.numel())).values.mean()
            state.maps.append(cells[i])
            state.keep(step)
        return scores, maps

    def flow_inputs(self, grays: torch.Tensor) -> FlowInputs:
        """What the flow needs of each of these (N, H, W) grey frames (``FlowInputs``)."""
        if not (self.in_torch and self.spec.method == "farneback"):
            return (grays,)
        levels = [expand(chunk, self.params) for chunk in torch.split(grays, self._chunk())]
        return tuple(torch.cat(level) for level in zip(*levels, strict=True))

    def _chunk(self) -> int:
        return _FLOW_CHUNK.get(torch.device(self.device).type, _FLOW_CHUNK["cpu"])

    def _pairs(
        self, camera_ids: Sequence[str], inputs: FlowInputs, times: Sequence[float] | None
    ) -> tuple[list[int], list[FlowInputs], list[Step], set[int]]:
        """In frame order: each frame's step (from its camera's rate up to it), whether it
        restarts its camera (a changed stride or window starts flows and persistence again, as
        after a reconnect), and the frames with a frame ``stride`` before them with those
        frames' inputs. Each camera's state then holds its last ``stride`` frames' inputs."""
        pairs: list[int] = []
        previous: list[FlowInputs] = []
        steps: list[Step] = []
        restarts: set[int] = set()
        fresh: set[int] = set()  # ids of the kept inputs that are views into this batch
        for index, camera_id in enumerate(camera_ids):
            state = self._cameras.setdefault(camera_id, _CameraMotion())
            if times is not None:
                state.pace.observe(times[index])
            measured = step_for(
                state.pace,
                state.step,
                units_fps=self.units_fps,
                persistence=self.spec.persistence,
            )
            if measured is not None:
                if state.step is not None and state.step.changes(measured):
                    state.previous.clear()
                    restarts.add(index)
                state.step = measured
            step = state.step or self.unmeasured
            steps.append(step)
            if len(state.previous) >= step.stride:
                pairs.append(index)
                previous.append(state.previous[-step.stride])
            view = tuple(t[index] for t in inputs)
            fresh.add(id(view))
            state.previous.append(view)
            while len(state.previous) > step.stride:
                state.previous.popleft()
        for camera_id in set(camera_ids):  # copies, not views that keep the batch alive
            state = self._cameras[camera_id]
            state.previous = deque(
                tuple(t.clone() for t in kept) if id(kept) in fresh else kept
                for kept in state.previous
            )
        return pairs, previous, steps, restarts

    def _cell_motion(
        self, previous: FlowInputs, current: FlowInputs, grid: tuple[int, int]
    ) -> torch.Tensor:
        """(N, rows, cols) mean flow magnitude per cell of each pair, from both frames'
        ``flow_inputs``."""
        params = self.params
        if not self.in_torch:
            flow = _OPENCV[self.spec.method]
            flows = torch.stack(
                [
                    torch.from_numpy(flow(_uint8(a), _uint8(b), params))
                    for a, b in zip(previous[0], current[0], strict=True)
                ]
            )
            return cell_magnitude(flows, grid, self.spec.cell_block)
        chunk = self._chunk()
        maps = [
            cell_magnitude(self._torch_flow(a, b), grid, self.spec.cell_block)
            for a, b in zip(_split(previous, chunk), _split(current, chunk), strict=True)
        ]
        return torch.cat(maps).cpu()

    def _torch_flow(self, previous: FlowInputs, current: FlowInputs) -> torch.Tensor:
        params = self.params
        if self.spec.method == "farneback":
            return flow_between(previous, current, params)
        return lucas_kanade(
            previous[0],
            current[0],
            levels=params.levels,
            winsize=params.winsize,
            iterations=params.iterations,
        )


def _split(inputs: FlowInputs, chunk: int) -> list[FlowInputs]:
    """Batch-first inputs in chunks of ``chunk`` frames."""
    return list(zip(*(torch.split(t, chunk) for t in inputs), strict=True))


def _uint8(gray: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(gray.to("cpu", torch.uint8).numpy())
