"""A camera at another frame rate than the model's units is judged in those units: a faster
one takes flows over several frames (the fit's computation, sampled at every frame), a slower
one scales its flows and shortens its persistence window; the rate comes from capture times,
robust to bursts, and a rate near a rounding boundary does not flip the camera's stride.
Frames without capture times are taken at the rate of the model's footage."""

from __future__ import annotations

import pytest
import torch

from tests.unit.test_torch_flow import texture
from vigil_shared.motion_units import MAX_STRIDE
from vigil_shared.schemas.one_class import MotionSpec
from vigil_shared.vision.motion_pace import CameraPace, Step, assumed_step, step_for
from vigil_shared.vision.motion_stream import MotionStream

SPEC = MotionSpec(flow_height=96, flow_width=128, grid_rows=6, grid_cols=8, persistence=3)


def walking_square(frames: int, pace: float = 2.0) -> list[torch.Tensor]:
    """A textured square crossing a still textured scene at ``pace`` px a frame, with sensor
    noise: uint8 (3, 96, 128) frames."""
    still = texture(96, 128, seed=1)
    square = texture(24, 24, seed=2) * 0.5 + 100
    generator = torch.Generator().manual_seed(3)
    out = []
    for index in range(frames):
        frame = still.clone()
        x = 10 + round(index * pace)
        frame[36:60, x : x + 24] = square
        frame += torch.randn(frame.shape, generator=generator)
        out.append(frame.round().clamp(0, 255).to(torch.uint8)[None].expand(3, -1, -1))
    return out


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        (1.0, Step(1, 1.0, 3, 1.0)),
        (1.08, Step(1, 1.0, 3, 1.08)),  # a clock's or a link's jitter: at the fit's rate
        (1.2, Step(1, 1.2, 4, 1.2)),
        (2.0, Step(2, 1.0, 3, 2.0)),
        (3.0, Step(3, 1.0, 3, 3.0)),
        (0.5, Step(1, 0.5, 2, 0.5)),
        (0.2, Step(1, 0.2, 1, 0.2)),
        (10.0, Step(MAX_STRIDE, 2.5, 6, 10.0)),  # stride and window capped
    ],
)
def test_a_step_spans_the_fits_interval(ratio: float, expected: Step) -> None:
    assert Step.at(ratio, persistence=3) == expected


def test_a_rate_near_a_rounding_boundary_keeps_its_stride() -> None:
    chosen = Step.at(2.4, persistence=4)
    assert chosen.stride == 2
    wobble = chosen.follow(2.6, persistence=4)  # round() would say 3
    assert (wobble.stride, wobble.window) == (chosen.stride, chosen.window)
    assert wobble.scale == pytest.approx(1.3)  # the scale follows the rate all the same
    moved = chosen.follow(3.1, persistence=4)
    assert moved.stride == 3 and chosen.changes(moved)


def test_the_rate_is_the_median_gap_so_a_burst_does_not_move_it() -> None:
    pace = CameraPace()
    times = [0.0, 0.2, 0.4, 0.6, 0.8, 1.4, 1.41, 1.42, 1.6, 1.8]  # a stall, then a burst
    for t in times:
        pace.observe(t)
    assert pace.interval() == pytest.approx(0.2)
    pace.observe(1.7)  # out of order: ignored
    assert pace.interval() == pytest.approx(0.2)
    assert step_for(pace, None, units_fps=None, persistence=4) is None
    assert step_for(CameraPace(), None, units_fps=5.0, persistence=4) is None
    step = step_for(pace, None, units_fps=2.5, persistence=4)
    assert step is not None and (step.stride, step.window) == (2, 4)
    assert step.scale == pytest.approx(1.0)


def scores(stream: MotionStream, frames: list[torch.Tensor], fps: float | None) -> torch.Tensor:
    times = None if fps is None else [i / fps for i in range(len(frames))]
    out = [
        stream(["cam"], [frame], None if times is None else [times[i]])[0][0]
        for i, frame in enumerate(frames)
    ]
    return torch.stack(out)


def test_a_camera_twice_the_fits_rate_scores_as_the_fits_footage_would() -> None:
    """Fitted at 5 fps, served at 10: each frame's score is that of a 5 fps camera whose last
    frame it is (every second frame back from it)."""
    frames = walking_square(16, pace=1.5)
    live = scores(MotionStream(SPEC, "cpu", units_fps=5.0), frames, fps=10.0)
    for last in (len(frames) - 1, len(frames) - 2):
        fit_rate = frames[last % 2 :: 2][: last // 2 + 1]
        expected = scores(MotionStream(SPEC, "cpu"), fit_rate, fps=None)
        torch.testing.assert_close(live[last], expected[-1])
    naive = scores(MotionStream(SPEC, "cpu"), frames, fps=None)
    assert live[-1] > 1.5 * naive[-1]  # per frame, the square moves half as far as at 5 fps


def test_a_camera_half_the_fits_rate_scales_its_flow_and_its_window() -> None:
    """Fitted at 10 fps, served at 5: each flow counts half (a displacement per fit interval)
    and the persistence window of 3 fit intervals takes 2 frames (rounded), so a score comes
    a frame sooner after a start."""
    spec = SPEC.model_copy(update={"persistence": 4})
    frames = walking_square(10, pace=3.0)
    live = scores(MotionStream(spec, "cpu", units_fps=10.0), frames, fps=5.0)
    unscaled = scores(MotionStream(spec.model_copy(update={"persistence": 2}), "cpu"), frames, None)
    torch.testing.assert_close(live[2:], unscaled[2:] * 0.5)
    assert torch.isnan(live[:2]).all()


def test_without_capture_times_or_a_fitted_rate_nothing_changes() -> None:
    frames = walking_square(8)
    plain = scores(MotionStream(SPEC, "cpu"), frames, fps=None)
    untimed = scores(MotionStream(SPEC, "cpu", units_fps=5.0), frames, fps=None)
    unfitted = scores(MotionStream(SPEC, "cpu"), frames, fps=10.0)
    torch.testing.assert_close(untimed, plain, equal_nan=True)
    torch.testing.assert_close(unfitted, plain, equal_nan=True)


def test_a_camera_that_changes_rate_starts_its_motion_again() -> None:
    """A camera switched from 5 to 10 fps (fitted at 5): its stride changes once the median gap
    does, and its first frames at the new stride wait for a full window, as after a start."""
    frames = walking_square(40, pace=1.0)
    stream = MotionStream(SPEC, "cpu", units_fps=5.0)
    times = [i * 0.2 for i in range(20)] + [3.8 + 0.1 * (i + 1) for i in range(20)]
    out = [stream(["cam"], [f], [t])[0][0] for f, t in zip(frames, times, strict=True)]
    state = stream._cameras["cam"]
    assert state.step is not None and state.step.stride == 2
    restarted = [i for i in range(21, 40) if torch.isnan(out[i])]
    assert restarted and not torch.isnan(out[-1])


def test_frames_without_capture_times_are_taken_at_the_footages_rate() -> None:
    """A model in 10-fps units fitted on 5-fps footage (an archive without capture times, its
    ``footage_fps`` 5): its frames without times score as 5-fps frames with them; at 10 fps,
    or without units (a model stored before them), one frame a step, as before."""
    spec = SPEC.model_copy(update={"persistence": 4})
    frames = walking_square(10, pace=3.0)
    timed = scores(MotionStream(spec, "cpu", units_fps=10.0), frames, fps=5.0)
    untimed = scores(MotionStream(spec, "cpu", units_fps=10.0, footage_fps=5.0), frames, None)
    torch.testing.assert_close(untimed, timed, equal_nan=True)
    assert assumed_step(units_fps=10.0, footage_fps=5.0, persistence=4) == Step(1, 0.5, 2, 0.5)
    one_frame = Step(1, 1.0, 4)
    assert assumed_step(units_fps=10.0, footage_fps=10.0, persistence=4) == Step(1, 1.0, 4, 1.0)
    assert assumed_step(units_fps=10.0, footage_fps=None, persistence=4) == one_frame
    assert assumed_step(units_fps=None, footage_fps=5.0, persistence=4) == one_frame
    plain = scores(MotionStream(spec, "cpu"), frames, fps=None)
    at_units = scores(MotionStream(spec, "cpu", units_fps=10.0, footage_fps=10.0), frames, None)
    torch.testing.assert_close(at_units, plain, equal_nan=True)


def test_reference_units_span_the_same_time_at_any_footage_rate() -> None:
    """The same walk filmed at 10 fps and at 5 fps (every second frame) scores alike in
    10-fps units: the 5-fps flows, twice as long, count half, and the window spans the same
    0.4 s; in each footage's own units (no reference) the 5-fps walk moves twice as fast."""
    spec = SPEC.model_copy(update={"persistence": 4})
    frames = walking_square(21, pace=1.5)
    ten = scores(MotionStream(spec, "cpu", units_fps=10.0, footage_fps=10.0), frames, None)
    five = scores(MotionStream(spec, "cpu", units_fps=10.0, footage_fps=5.0), frames[::2], None)
    own = scores(MotionStream(spec, "cpu", units_fps=5.0, footage_fps=5.0), frames[::2], None)
    walking = float(ten[-6:].mean())  # the same 1 s of the walk at each rate
    assert float(five[-3:].mean()) == pytest.approx(walking, rel=0.4)
    assert float(own[-3:].mean()) > 1.6 * walking
    assert not torch.isnan(five[2]) and torch.isnan(own[2])  # the window fills in 0.4 s
