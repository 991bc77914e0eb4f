"""The event-level bench end to end, small: fitted on 3 Ped2 training clips, the default model
scores 2 test clips and 2 synthetic scenes, replayed through the worker's event lifecycle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.ped2_events import QUICK_KINDS, main
from vigil_shared.settings import CommonSettings

pytestmark = [pytest.mark.dataset, pytest.mark.slow]

FAST = {"image_size": 160, "appearance": {"frame_stride": 4, "bank_size": 512}}


def test_quick_bench_reports_frames_and_events(ped2: Path, settings: CommonSettings) -> None:
    report = main(["--quick", "--device", "cpu", "--spec", json.dumps(FAST)])
    assert list(report["models"]) == ["default"]
    row = report["models"]["default"]
    test, synthetic = row["ped2_test"], row["synthetic"]
    assert sorted(test["clips"]) == ["Test001", "Test002"]
    assert sorted(synthetic["clips"]) == sorted(QUICK_KINDS)
    assert test["frames"]["auroc"] > 0.85
    # Test001 and Test002 each hold one anomalous interval, which the model finds eventually.
    assert test["events"]["intervals"] == 2 and test["events"]["found_eventually"] == 2
    assert 0 <= test["events"]["median_delay_s"] <= test["events"]["max_delay_s"]
    assert synthetic["events"]["intervals"] == 2
    assert synthetic["events"]["normal_hours"] > 0


def test_the_bench_runs_at_5_fps(ped2: Path, settings: CommonSettings) -> None:
    """Every clip at every second frame with capture times, as a 5 fps camera's: the figures
    are in its time (a test clip's frames and hours halve) and the fit knows its rate."""
    report = main(["--quick", "--fps", "5", "--device", "cpu", "--spec", json.dumps(FAST)])
    assert (report["fps"], report["capture_times"]) == (5.0, True)
    assert report["dataset"]["name"] == "ped2-train-3clips-5fps"
    row = report["models"]["default"]
    assert row["fit_metrics"]["fps"] == pytest.approx(5.0)
    assert row["fit_metrics"]["motion_fps"] == pytest.approx(5.0)  # what the API checks against
    test = row["ped2_test"]
    (interval,) = test["clips"]["Test001"]["intervals"]  # Test001: 180 frames at 10 fps
    assert interval[1] < 90
    assert test["events"]["intervals"] == 2 and test["events"]["found_eventually"] == 2
