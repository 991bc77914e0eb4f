"""Scoring threads get whole cameras, balanced by frames, each shard in batch order."""

from __future__ import annotations

from tests.factories import consumed_frame
from vigil_inference.scoring import camera_shards


def test_cameras_stay_whole_and_in_order_across_balanced_shards() -> None:
    batch = [consumed_frame(camera, i) for i, camera in enumerate("aabacbdaab")]
    shards = camera_shards(batch, 2)
    assert len(shards) == 2
    for shard in shards:
        offsets = [frame.record.offset for frame in shard]
        assert offsets == sorted(offsets), "a shard keeps batch order"
    cameras = [{frame.headers.camera_id for frame in shard} for shard in shards]
    assert not cameras[0] & cameras[1], "a camera is scored by one thread"
    assert sorted(len(s) for s in shards) == [5, 5]  # a:5 | b:3 c:1 d:1


def test_fewer_cameras_than_threads_and_an_empty_batch() -> None:
    one_camera = [consumed_frame("a", 0), consumed_frame("a", 1)]
    assert [len(s) for s in camera_shards(one_camera, 4)] == [2]
    assert camera_shards([], 4) == []
