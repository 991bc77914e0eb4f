"""The Ped2 benchmarks' data split and their quick (CI) runs; skipped without the dataset."""

from __future__ import annotations

import numpy as np
import pytest

from bench.ped2_data import SPLIT, Ped2MissingError, load_ped2, ped2_root, split

pytestmark = pytest.mark.dataset


def _ped2_present() -> bool:
    try:
        ped2_root()
    except Ped2MissingError:
        return False
    return True


needs_ped2 = pytest.mark.skipif(
    not _ped2_present(), reason="UCSD Ped2 is not at ../shared/datasets/ucsd-ped2"
)


@needs_ped2
def test_the_split_is_by_clip_and_every_part_has_both_classes() -> None:
    frames = load_ped2(size=32)
    assert len(frames) == 4560
    parts = {part: split(frames, part=part) for part in SPLIT}
    clips = [set(p.clips.tolist()) for p in parts.values()]
    assert not (clips[0] & clips[1]) and not (clips[0] & clips[2]) and not (clips[1] & clips[2])
    for part in parts.values():
        assert set(np.unique(part.labels).tolist()) == {0, 1}
    # Test001 is abnormal from frame 61 on (1-based, inclusive).
    test001 = frames.select(frames.clips == "Test001")
    assert test001.labels[59] == 0 and test001.labels[60] == 1 and test001.labels[-1] == 1
    strided = split(frames, part="test", stride=3)
    assert set((strided.numbers - 1) % 3) == {0}


@needs_ped2
@pytest.mark.slow
def test_the_quick_classify_benchmark_runs() -> None:
    from bench.ped2_classify import main

    report = main(["--quick"])
    names = [row["name"] for row in report["rows"]]
    assert names == ["probe", "default", "search-best", "ensemble-top-2", "soup-top-2"]
    assert len(report["study"]["trials"]) == 2
    for row in report["rows"]:
        assert 0.0 <= row["test"]["auroc"] <= 1.0
