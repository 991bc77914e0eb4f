"""A camera's frame rate against the frame rate a motion model's units are in.

Optical flow is a displacement per frame pair, so the motion stream's units are pixels *per
frame interval at some rate*, and its persistence window a number of those intervals. Served on
a camera that runs at another rate, every flow is out of scale: fitted at 10 fps and served at
5, a walker moves twice as far per frame and looks like a cyclist (on Ped2, 95 % of unseen
normal frames over the threshold); fitted at 5 and served at 10, a cyclist looks like a walker.
So the stream judges each frame in fixed units, a model's ``units_fps``: the rate of the footage
it was fitted on, or its spec's ``motion.reference_fps`` where set (an option, measured and left
off: docs/one-class.md), for the fit's footage as for live cameras. Cameras run at whatever
rate the operator sets, the link allows or the footage happened to have, so the stream
measures each camera's rate and takes it in those units:

- a camera ``ratio`` times faster than the units' rate (ratio >= 1.5) takes each frame's flow
  against the frame ``stride = round(ratio)`` back, so a flow spans about one unit interval, and
  its persistence window runs over maps ``stride`` frames apart, so it spans what the fit's
  did: the same computation as on footage at the units' rate, sampled at every live frame;
- a camera within ``SAME_RATE`` of the units' rate is taken at it, one frame a step;
- otherwise (a slower camera, or one a little faster) each flow is scaled by
  ``ratio / stride`` to a displacement per unit interval, and the persistence window holds
  ``round(persistence * ratio / stride)`` maps (at least 1), the same span in time.

The rate is the median of a camera's last ``GAPS`` capture-time gaps, so bunched arrivals (a
network stall, then a burst) and single dropped frames do not move it. Frames without capture
times are taken at the rate of the model's footage (``assumed_step``); a model without units
keeps to one frame a step, as before.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

from vigil_shared.motion_units import MAX_STRIDE

GAPS = 15
"""Capture-time gaps a camera's rate is the median of."""
STRIDE_FROM = 1.5
"""A camera this many times faster than the fit, or more, takes flows over several frames."""
MAX_WINDOW = 2
"""A persistence window holds at most this many times the fit's maps (a camera far faster than
``MAX_STRIDE`` allows): bounds a replay's context."""
SAME_RATE = 0.1
"""A camera within this fraction of the fit's rate is taken at it: its flows unscaled, as
fitted (a camera's clock and its link's jitter move the measured rate by a few per cent)."""
DRIFT = 0.2
"""A camera keeps its stride and window while its rate stays within this fraction of the rate
they were chosen at."""


@dataclass(frozen=True)
class Step:
    """How one camera's frames map onto the fit's frame intervals."""

    stride: int  # a frame's flow is against the frame this many back
    scale: float  # a flow's displacement times this: per fit interval
    window: int  # persistence maps, ``stride`` frames apart
    ratio: float = 1.0  # the camera's rate over the fit's that set stride and window

    def changes(self, other: Step) -> bool:
        """Whether frames taken at ``other`` cannot continue this step's flows and maps."""
        return (self.stride, self.window) != (other.stride, other.window)

    @classmethod
    def at(cls, ratio: float, persistence: int) -> Step:
        """``ratio``: the camera's frame rate over the fit's. A step of ``stride`` frames spans
        ``stride / ratio`` fit intervals: its flow is scaled by the inverse, and the fit's
        ``persistence`` intervals take ``persistence * ratio / stride`` steps (at most
        ``MAX_WINDOW`` times ``persistence``)."""
        if abs(ratio - 1.0) <= SAME_RATE:
            return cls(1, 1.0, persistence, ratio)
        stride = min(MAX_STRIDE, round(ratio)) if ratio >= STRIDE_FROM else 1
        per_interval = ratio / stride
        window = max(1, min(persistence * MAX_WINDOW, round(persistence * per_interval)))
        return cls(stride, per_interval, window, ratio)

    def follow(self, ratio: float, persistence: int) -> Step:
        """This step at a camera's newly measured ``ratio``: the same stride and window, the
        scale brought up to date, while the ratio stays within ``DRIFT`` of the one they were
        chosen at (a rate near a rounding boundary would otherwise flip them, and each flip
        starts the camera's motion again); a new step beyond."""
        if abs(ratio / self.ratio - 1.0) > DRIFT:
            return Step.at(ratio, persistence)
        at_rate = self.stride == 1 and abs(ratio - 1.0) <= SAME_RATE
        return Step(self.stride, 1.0 if at_rate else ratio / self.stride, self.window, self.ratio)


@dataclass
class CameraPace:
    """One camera's recent capture-time gaps."""

    last_time: float | None = None
    gaps: deque[float] = field(default_factory=lambda: deque(maxlen=GAPS))

    def observe(self, captured_at: float) -> None:
        if self.last_time is not None and captured_at > self.last_time:
            self.gaps.append(captured_at - self.last_time)
        if self.last_time is None or captured_at > self.last_time:
            self.last_time = captured_at

    def interval(self) -> float | None:
        return statistics.median(self.gaps) if self.gaps else None

    def copy(self) -> CameraPace:
        return CameraPace(self.last_time, deque(self.gaps, maxlen=GAPS))


def step_for(
    pace: CameraPace, current: Step | None, *, units_fps: float | None, persistence: int
) -> Step | None:
    """The step of a camera at its measured rate (``current``: the one it has); None without
    units or before its second frame (``assumed_step``)."""
    interval = pace.interval()
    if units_fps is None or units_fps <= 0 or interval is None or interval <= 0:
        return None
    ratio = (1.0 / interval) / units_fps
    if current is None:
        return Step.at(ratio, persistence)
    return current.follow(ratio, persistence)


def assumed_step(*, units_fps: float | None, footage_fps: float | None, persistence: int) -> Step:
    """The step of frames whose rate is not measured (no capture times, or a camera's first):
    at the rate of the model's footage, the one its fit and calibration saw."""
    if units_fps is None or footage_fps is None or units_fps <= 0 or footage_fps <= 0:
        return Step(1, 1.0, persistence)
    return Step.at(footage_fps / units_fps, persistence)


def context_frames(persistence: int, *, units_fps: float | None) -> int:
    """The most frames a camera's motion score depends on: its persistence window of maps,
    ``stride`` frames apart, and the flow of the first (``persistence`` at one frame a step)."""
    if units_fps is None:
        return persistence
    return persistence * MAX_WINDOW * MAX_STRIDE
