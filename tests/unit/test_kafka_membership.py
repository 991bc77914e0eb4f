"""Group consumers rejoin within seconds, and a worker tells records of a partition it lost (even
if it got it straight back) from those of its new ownership."""

from __future__ import annotations

import socket

import pytest
from kafka import TopicPartition
from pydantic import ValidationError

from vigil_shared.kafka import PartitionChanges, group_membership
from vigil_shared.settings import KafkaSettings


def test_group_consumers_have_a_short_session_and_static_membership_is_opt_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert group_membership(KafkaSettings()) == {
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 3_000,
        "max_poll_interval_ms": 300_000,
    }
    monkeypatch.setenv("VIGIL_KAFKA_GROUP_INSTANCE_ID", "inference-1")
    assert group_membership(KafkaSettings())["group_instance_id"] == "inference-1"


def test_each_replica_of_a_container_gets_its_own_name_from_its_hostname(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "3f2a9c1b7d0e")
    monkeypatch.setenv("VIGIL_KAFKA_GROUP_INSTANCE_ID", "inference-{hostname}")
    assert KafkaSettings().group_instance_id == "inference-3f2a9c1b7d0e"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("VIGIL_KAFKA_HEARTBEAT_INTERVAL_MS", "5000", "a third of"),
        ("VIGIL_KAFKA_SESSION_TIMEOUT_MS", "1000", "session_timeout_ms"),
        ("VIGIL_KAFKA_GROUP_INSTANCE_ID", "two words", "group_instance_id"),
    ],
)
def test_membership_settings_that_cannot_work_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=message):
        KafkaSettings()


def test_a_partition_revoked_and_assigned_again_starts_a_new_epoch() -> None:
    a, b = TopicPartition("frames", 0), TopicPartition("frames", 1)
    changes = PartitionChanges()
    changes.on_partitions_assigned([a, b])
    stamps = changes.stamp([a, b])
    assert changes.take() == (set(), {a, b})
    changes.on_partitions_revoked([a, b])
    changes.on_partitions_assigned([a])
    assert changes.changed(stamps) == {a, b}
    assert changes.take() == ({a, b}, {a})
    assert changes.take() == (set(), set())
    changes.on_partitions_lost({a})
    assert changes.epoch(a) == 2 and changes.epoch(b) == 1
