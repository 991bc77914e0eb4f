"""The labels bench end to end, small: 3 Ped2 training clips, 2 test clips in 2 folds, each test
clip scored by a model fitted with the other one's labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.ped2_labels import deal, main
from bench.ped2_one_class import clip_frames, labels_of
from vigil_shared.settings import CommonSettings

pytestmark = [pytest.mark.dataset, pytest.mark.slow]


def test_quick_labels_bench_scores_each_clip_with_a_model_its_labels_never_saw(
    ped2: Path, settings: CommonSettings
) -> None:
    report = main(["--quick", "--device", "cpu"])
    assert report["folds"] == [["Test001"], ["Test002"]]
    plain = report["models"]["no_labels"]
    labeled = report["models"]["with_labels"]
    for fold in labeled["folds"]:
        assert set(fold["scores"]).isdisjoint(fold["labeled"])
        assert sorted(fold["scores"] + fold["labeled"]) == ["Test001", "Test002"]
        (other,) = fold["labeled"]
        metrics = fold["label_metrics"]
        abnormal = int(labels_of(ped2, other, len(clip_frames(ped2, other))).sum())
        assert metrics["n_labeled_abnormal"] == abnormal > 0
        # One labeled clip is not enough for either label rule (10 groups): the fit keeps the
        # normal footage's threshold and the plain fusion, so it is the no-label model.
        assert metrics["threshold_from_labels"] == 0.0 and metrics["fusion_from_labels"] == 0.0
        assert fold["model_threshold"] == pytest.approx(plain["model_threshold"])
    assert report["summary"]["with_labels"] == pytest.approx(report["summary"]["no_labels"])
    for row in (plain, labeled):
        assert row["threshold"] == 1.0  # scores in units of each model's own threshold
        assert row["events"]["intervals"] == 2 and 0.5 < row["frames"]["auroc"] <= 1.0


def test_test_clips_are_dealt_round_robin_and_every_fold_scores_some() -> None:
    clips = [f"Test{i:03d}" for i in range(1, 13)]
    folds = deal(clips, 6)
    assert folds[0] == ["Test001", "Test007"] and folds[5] == ["Test006", "Test012"]
    assert sorted(c for fold in folds for c in fold) == clips
    with pytest.raises(SystemExit, match="--folds"):
        deal(clips, 13)
