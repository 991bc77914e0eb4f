"""A small Ped2 run of the one_class model through the real path (S3 dataset, fit, artifact,
``score_frames``): fitted on 3 training clips, it must rank the 2 test clips' anomalies well,
with either flow method."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bench.ped2_one_class import run
from vigil_shared.settings import CommonSettings

pytestmark = [pytest.mark.dataset, pytest.mark.slow]

FAST = {"image_size": 160, "appearance": {"frame_stride": 4, "bank_size": 512}}


def test_quick_ped2_fit_ranks_anomalies_far_above_chance(
    ped2: Path, settings: CommonSettings
) -> None:
    args = argparse.Namespace(
        quick=True,
        device="cpu",
        batch_size=16,
        threads=2,
        spec=json.dumps(FAST),
        verbose=False,
        scores=None,
        no_baseline=True,
        compare_motion=True,
    )
    report = run(args)
    assert report["dataset"]["frames"] == 420 and report["test_frames"] == 360
    assert report["model"]["auroc"] > 0.85
    assert report["motion_only"]["auroc"] > 0.8
    assert report["fit_metrics"]["holdout_fpr"] <= 0.05
    # The same fit with torch's Lucas-Kanade flow instead of Farneback ranks as well.
    other = report["other_motion"]
    assert other["method"] == "lucas_kanade"
    assert other["model"]["auroc"] > 0.85 and other["motion_only"]["auroc"] > 0.8
