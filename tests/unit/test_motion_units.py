"""A camera's rate against its model's motion units: noticed outside what was measured (under
half the units' rate) or built (beyond the longest stride), silent within."""

from __future__ import annotations

import pytest

from vigil_shared.motion_units import MAX_STRIDE, SLOWEST_MEASURED, rate_notice


@pytest.mark.parametrize("camera_fps", [5.0, 10.0, 20.0, 45.0])
def test_rates_the_pacing_handles_are_not_noticed(camera_fps: float) -> None:
    assert rate_notice(camera_fps, 10.0) is None


def test_a_camera_under_half_the_units_rate_is_noticed() -> None:
    notice = rate_notice(2.5, 10.0)
    assert notice is not None
    assert notice.startswith("camera at 2.5 fps, under half the rate")
    assert "each flow spans 4.0 of its frame intervals" in notice
    assert rate_notice(10.0 * SLOWEST_MEASURED, 10.0) is None  # the measured edge itself


def test_a_camera_beyond_the_longest_stride_is_noticed() -> None:
    notice = rate_notice(50.0, 10.0)
    assert notice is not None and "5.0 times the rate" in notice
    assert f"{MAX_STRIDE} frames back at most and are scaled by 1.25" in notice


@pytest.mark.parametrize(("camera_fps", "units"), [(2.0, None), (0.0, 10.0), (2.0, 0.0)])
def test_without_units_or_a_rate_there_is_nothing_to_say(
    camera_fps: float, units: float | None
) -> None:
    assert rate_notice(camera_fps, units) is None
