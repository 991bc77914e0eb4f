"""A consumer loop that meets a Kafka failure waits, then reads again from what it committed."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import FencedInstanceIdError, KafkaConnectionError

from vigil_shared.kafka import BrokerOutage, InstanceIdConflictError


class FakeConsumer:
    def __init__(self, committed: dict[TopicPartition, int | None]) -> None:
        self._committed = committed
        self.seeks: list[tuple[TopicPartition, Any]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self._committed)

    def committed(self, tp: TopicPartition) -> int | None:
        return self._committed[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.seeks.append((tp, "beginning"))


def test_a_failure_pauses_longer_each_time_then_rewinds_once_to_the_committed_offsets() -> None:
    a, b = TopicPartition("frames", 0), TopicPartition("frames", 1)
    consumer = FakeConsumer({a: 42, b: None})
    outage = BrokerOutage("test", max_pause_s=0.02)
    stop = threading.Event()
    assert not outage.recover(consumer)
    outage.pause_s = 0.005
    outage.failed(KafkaConnectionError("broker gone"), stop)
    outage.failed(KafkaConnectionError("broker gone"), stop)
    assert outage.failures == 2 and outage.pause_s == 0.02
    assert outage.recover(consumer)
    assert sorted(consumer.seeks, key=lambda s: s[0].partition) == [(a, 42), (b, "beginning")]
    assert not outage.recover(consumer)
    assert outage.pause_s == 0.5


def test_a_static_member_fenced_by_another_process_under_its_name_stops() -> None:
    outage = BrokerOutage("test")
    with pytest.raises(InstanceIdConflictError, match="VIGIL_KAFKA_GROUP_INSTANCE_ID"):
        outage.failed(FencedInstanceIdError("fenced"), threading.Event())
