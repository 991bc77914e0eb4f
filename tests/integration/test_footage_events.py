"""The event bench on footage other than Ped2's own files: Ped2's clips repackaged as a colour
camera at twice the size and twice the rate (bench/footage.py), fitted and scored through the
same bench. Ingest's resolution cap, the colour decode, the 10 fps sampling with capture times
and the labels' mapping all run; the cyclist of Test002 must still be found."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.footage import CACHE, Footage, repackaged
from bench.ped2_events import main
from vigil_shared.settings import CommonSettings

pytestmark = [pytest.mark.dataset, pytest.mark.slow]

FAST = {"image_size": 160, "appearance": {"frame_stride": 4, "bank_size": 512}}


@pytest.fixture
def colour_camera(ped2: Path, tmp_path: Path) -> Iterator[Footage]:
    source = Footage.ped2()
    footage = repackaged(
        source,
        tmp_path / f"colour-{tmp_path.name}",
        train=("Train001", "Train002", "Train003", "Train004"),
        test=("Test002",),
    )
    yield footage
    for folder in CACHE.glob(f"{footage.name}-*"):  # its decoded clips
        shutil.rmtree(folder, ignore_errors=True)


def test_the_bench_measures_a_colour_camera_at_20_fps(
    colour_camera: Footage, settings: CommonSettings
) -> None:
    report = main(
        [
            "--footage", str(colour_camera.root), "--quick", "--device", "cpu",
            "--normal-clips", "Train004", "--spec", json.dumps(FAST),
        ]
    )  # fmt: skip
    assert report["footage"]["fps"] == 20.0 and report["footage"]["grey"] is False
    # Faster footage is taken at 10 fps, as a camera at the rate the defaults were chosen at.
    assert (report["fps"], report["capture_times"]) == (10.0, True)
    assert report["footage"]["train_clips"] == ["Train001", "Train002", "Train003"]
    assert report["dataset"]["frames"] == 120 + 150 + 150  # Ped2's own frames, once each
    assert report["test_set"] == "test" and "synthetic_seed" not in report
    row = report["models"]["default"]
    assert row["fit_metrics"]["fps"] == pytest.approx(10.0)
    assert set(row) >= {"test", "unseen_normal"} and "synthetic" not in row
    test = row["test"]
    (interval,) = test["clips"]["Test002"]["intervals"]
    assert interval[0] == 94  # frames 95-180 of Ped2's Test002, in its 10 fps frames
    assert test["frames"]["auroc"] > 0.85
    assert test["events"]["found_eventually"] == 1
    assert row["unseen_normal"]["events"]["false_alarms"] == 0
