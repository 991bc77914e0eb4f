"""The frames topic read back as a log: one camera's frames captured in a time range.

Kafka keeps the frames topic for its retention (``VIGIL_KAFKA_FRAMES_RETENTION_HOURS``, 24 h by
default, docs/live-loop.md): within it, any range can be read again. The API reads it to build
a dataset from a camera's footage; the trainer reads it to replay a range through a model.

The consumer is outside any group: partitions are assigned by hand and sought by time, so the
read neither joins nor disturbs a consumer group, and commits nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from vigil_shared.schemas.frames import FrameHeaders

# Kafka's record time is when ingest sent the frame, a little after its capture: read this far
# past the range's end before concluding that no later frame of the range can follow.
SEND_DELAY_SLACK = timedelta(seconds=30)

Frame = tuple[FrameHeaders, bytes]


class FrameLogError(ValueError):
    """The range cannot be read; the message says why and what to do."""


def camera_frames(
    *,
    consumer: KafkaConsumer,
    topic: str,
    camera_id: str,
    start: datetime,
    end: datetime,
    deadline_s: float,
) -> list[Frame]:
    """The camera's frames captured in [start, end], oldest first (by capture time, then
    sequence); empty when the topic no longer holds the range. ``FrameLogError`` past
    ``deadline_s``."""
    frames = list(
        stream_camera_frames(
            consumer=consumer,
            topic=topic,
            camera_id=camera_id,
            start=start,
            end=end,
            deadline=time.monotonic() + deadline_s,
        )
    )
    frames.sort(key=lambda f: (f[0].captured_at, f[0].seq))
    return frames


def stream_camera_frames(
    *,
    consumer: KafkaConsumer,
    topic: str,
    camera_id: str,
    start: datetime,
    end: datetime,
    deadline: float | None = None,
) -> Iterator[Frame]:
    """The camera's frames captured in [start, end] in the topic's order (a camera's frames
    share a key, so a partition, in the order ingest sent them), one poll at a time: memory
    stays bounded however long the range. ``FrameLogError`` once ``time.monotonic()`` passes
    ``deadline`` (None: no limit)."""
    pending, ends = _seek(consumer, topic, start)
    key = camera_id.encode()
    stop_after = millis(end + SEND_DELAY_SLACK)
    while pending:
        if deadline is not None and time.monotonic() > deadline:
            raise FrameLogError("reading the frames topic took too long; ask for a shorter range")
        for tp, records in consumer.poll(timeout_ms=500).items():
            for record in records:
                if record.offset + 1 >= ends[tp] or record.timestamp > stop_after:
                    pending.discard(tp)
                if record.key != key or record.offset >= ends[tp]:
                    continue
                headers = FrameHeaders.from_kafka_headers(record.headers)
                if start <= headers.captured_at <= end and record.value:
                    yield headers, record.value
            if tp not in pending:
                consumer.pause(tp)


def _seek(
    consumer: KafkaConsumer, topic: str, start: datetime
) -> tuple[set[TopicPartition], dict[TopicPartition, int]]:
    """Assign every partition and seek each to the first record sent at ``start`` or later;
    the partitions that hold such a record, and every partition's end."""
    partitions = [
        TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
    ]
    if not partitions:
        raise FrameLogError(f"the frames topic {topic} does not exist; is ingest running?")
    consumer.assign(partitions)
    try:
        starts = consumer.offsets_for_times({tp: millis(start) for tp in partitions})
        ends = consumer.end_offsets(partitions)
    except KafkaError as exc:
        raise FrameLogError(f"the frames topic could not be read by time ({exc}); retry") from exc
    pending = set()
    for tp in partitions:
        found = starts.get(tp)
        if found is not None and found.offset < ends[tp]:
            consumer.seek(tp, found.offset)
            pending.add(tp)
    return pending, ends


def millis(at: datetime) -> int:
    return max(0, int(at.timestamp() * 1000))  # Kafka has no time before the epoch
