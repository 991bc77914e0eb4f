"""The closed-loop bench end to end, small: 3 Ped2 training clips, 2 test clips, reviews of the
model before in each clip's first 30%, both models evaluated on the rest."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.ped2_loop import main
from vigil_shared.settings import CommonSettings

pytestmark = [pytest.mark.dataset, pytest.mark.slow]


def test_quick_loop_bench_compares_the_retrained_model_on_unseen_frames(
    ped2: Path, settings: CommonSettings
) -> None:
    report = main(["--quick", "--device", "cpu"])
    assert report["test_clips"] == ["Test001", "Test002"] and report["review_share"] == 0.3
    reviews = report["reviews"]
    assert reviews["confirmed"] + reviews["false_alarms"] == len(reviews["events"])
    # The retrained dataset is the training clips plus the review windows and reviewed frames.
    assert reviews["retrain_frames"] > reviews["before_frames"]
    # The review windows are trimmed by the model before; every footage frame is accounted for.
    trim = reviews["trim"]
    assert trim["footage_frames"] == sum(math.ceil(0.3 * n) for n in (180, 180))
    assert trim["kept_frames"] + sum(trim["left_out"].values()) == trim["footage_frames"]
    assert reviews["fitted_frames"] == reviews["retrain_frames"] - (
        trim["footage_frames"] - trim["kept_frames"]
    )
    for name in ("before", "retrained"):
        row = report["models"][name]
        assert sorted(row["clips"]) == ["Test001", "Test002"]
        assert 0.0 <= report["summary"][name]["auroc"] <= 1.0
        # Test001 and Test002 each keep their anomalous interval in the evaluated 70%.
        assert row["events"]["intervals"] == 2 and row["events"]["normal_hours"] > 0
