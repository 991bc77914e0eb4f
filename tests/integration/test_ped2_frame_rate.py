"""The frame-rate bench, small: a model fitted on 10 fps footage, served on a 5 fps camera.
Without capture times its flows are twice the fit's and normal footage floods with alarms;
with them the camera is judged in the fit's units."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.ped2_frame_rate import main
from vigil_shared.settings import CommonSettings

pytestmark = [pytest.mark.dataset, pytest.mark.slow]

FAST = {"image_size": 160, "appearance": {"frame_stride": 4, "bank_size": 512}}


def test_a_camera_at_half_the_fits_rate_is_judged_in_the_fits_units(
    ped2: Path, settings: CommonSettings
) -> None:
    report = main(
        [
            "--device", "cpu", "--fit-fps", "10", "--live", "5",
            "--train-clips", "Train001,Train002,Train003",
            "--test-clips", "Test002", "--normal-clips", "Train004,Train005",
            "--spec", json.dumps(FAST),
        ]
    )  # fmt: skip
    assert report["fit_fps"] == 10.0
    untimed, timed = report["rows"]
    assert (untimed["capture_times"], timed["capture_times"]) == (False, True)
    flooded = untimed["unseen_normal"]["frames_at_or_above_threshold"]
    kept = timed["unseen_normal"]["frames_at_or_above_threshold"]
    assert flooded > 0.5 and kept < 0.05
    assert timed["unseen_normal"]["events"]["false_alarms"] == 0
    assert timed["ped2_test"]["events"]["found_eventually"] == 1  # Test002's cyclist
