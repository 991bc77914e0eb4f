"""Scoring threads get whole cameras, balanced by frames, each shard in batch order."""

from __future__ import annotations

from kafka.consumer.fetcher import ConsumerRecord

from tests.factories import T0
from vigil_inference.frames import Frame
from vigil_inference.scoring import camera_shards
from vigil_shared.schemas.frames import FrameHeaders


def parsed(camera_id: str, offset: int) -> Frame:
    record = ConsumerRecord(
        "frames", 0, 0, offset, 0, 0, camera_id.encode(), b"", [], None, 0, 0, 0
    )
    headers = FrameHeaders(camera_id=camera_id, seq=offset, captured_at=T0, width=4, height=4)
    return Frame(record, headers)


def test_cameras_stay_whole_and_in_order_across_balanced_shards() -> None:
    batch = [parsed(camera, i) for i, camera in enumerate("aabacbdaab")]
    shards = camera_shards(batch, 2)
    assert len(shards) == 2
    for shard in shards:
        offsets = [frame.record.offset for frame in shard]
        assert offsets == sorted(offsets), "a shard keeps batch order"
    cameras = [{frame.headers.camera_id for frame in shard} for shard in shards]
    assert not cameras[0] & cameras[1], "a camera is scored by one thread"
    assert sorted(len(s) for s in shards) == [5, 5]  # a:5 | b:3 c:1 d:1


def test_fewer_cameras_than_threads_and_an_empty_batch() -> None:
    assert [len(s) for s in camera_shards([parsed("a", 0), parsed("a", 1)], 4)] == [2]
    assert camera_shards([], 4) == []
