"""Footage of one camera is split into time segments, so a held-out group exists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vigil_shared.dataset_groups import event_group, group_by_time, segment_starts
from vigil_shared.datasets import NewImage

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def at(*seconds: float) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds]


def test_a_gap_longer_than_gap_s_starts_a_segment() -> None:
    assert segment_starts(at(0, 1, 2, 100, 101), gap_s=60) == [0, 0, 0, 3, 3]


def test_a_gap_of_exactly_gap_s_does_not_split() -> None:
    assert segment_starts(at(0, 60, 120), gap_s=60) == [0, 0, 0]


def test_a_segment_is_at_most_segment_s_long() -> None:
    times = at(*range(0, 10))
    assert segment_starts(times, gap_s=60, segment_s=4) == [0, 0, 0, 0, 4, 4, 4, 4, 8, 8]


def test_no_times_no_segments_and_bad_arguments_are_refused() -> None:
    assert segment_starts([]) == []
    with pytest.raises(ValueError, match="positive"):
        segment_starts(at(0), gap_s=0)
    with pytest.raises(ValueError, match="capture order"):
        segment_starts(at(5, 1))


def image(second: float, seq: int, camera: str = "lobby") -> NewImage:
    return NewImage(
        data=b"x",
        extension=".jpg",
        group=camera,
        sequence=seq,
        camera_id=camera,
        captured_at=T0 + timedelta(seconds=second),
    )


def test_images_are_regrouped_by_segment_in_capture_order() -> None:
    images = [image(200, 3), image(0, 0), image(1, 1), image(130, 2)]
    grouped = group_by_time(images, gap_s=60)
    assert [i.sequence for i in grouped] == [0, 1, 2, 3]
    groups = [i.group for i in grouped]
    assert groups[0] == groups[1] == "lobby/20261201T080000.000Z"
    assert groups[2] != groups[3] and len(set(groups)) == 3
    assert all(g.startswith("lobby/") for g in groups)


def test_an_image_without_a_capture_time_cannot_be_grouped() -> None:
    undated = NewImage(data=b"x", extension=".jpg", group="g", source_name="a.jpg")
    with pytest.raises(ValueError, match=r"a\.jpg has no capture time"):
        group_by_time([undated])


def test_each_event_is_its_own_group() -> None:
    assert event_group("lobby", "e1") != event_group("lobby", "e2")
