"""What ``ensure_topics`` leaves on the broker (retention from the settings, compaction for
state) and where consumer groups live (inside the topic namespace), read back from Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from tests.support import wait_until
from vigil_shared.kafka import ensure_topics, make_consumer
from vigil_shared.settings import KafkaSettings
from vigil_shared.topics import Topics

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@pytest.fixture
def admin(kafka_settings: KafkaSettings) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers.split(","))
    yield client
    client.close()


def topic_configs(admin: KafkaAdminClient, *topics: str) -> dict[str, dict[str, str]]:
    resources = [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
    described: dict[str, dict[str, dict[str, Any]]] = admin.describe_configs(resources)["topic"]
    return {
        topic: {key: str(entry["value"]) for key, entry in configs.items()}
        for topic, configs in described.items()
    }


def created_with_settings(admin: KafkaAdminClient, *topics: str) -> dict[str, dict[str, str]]:
    """The topics' settings once every one of them reads back with its retention, else {}."""
    configs = topic_configs(admin, *topics)
    ready = all("retention.ms" in configs.get(topic, {}) for topic in topics)
    return configs if ready else {}


def test_topics_get_the_retention_of_the_settings(admin: KafkaAdminClient, topics: Topics) -> None:
    wait_until(
        lambda: created_with_settings(admin, topics.frames, topics.events),
        timeout_s=30,
        what="the new topics' settings on the broker",
    )
    configs = topic_configs(admin, *topics.all())
    for topic in (topics.frames, topics.frames_dead_letter):
        assert configs[topic]["cleanup.policy"] == "delete"
        assert configs[topic]["retention.ms"] == str(24 * HOUR_MS)  # the default: one day
        assert configs[topic]["segment.ms"] == str(HOUR_MS)  # outlives it by an hour at most
        assert "retention.bytes" not in configs[topic]
    for topic in (topics.events, topics.events_dead_letter, topics.camera_status):
        assert configs[topic]["retention.ms"] == str(30 * DAY_MS)
    # Explicit on every topic: the single broker's replication factor 1 takes one copy.
    compacted = {"cleanup.policy": "compact", "min.insync.replicas": "1"}
    assert configs[topics.model_assignments] == compacted
    assert configs[topics.scoring_status] == compacted
    assert all(config["min.insync.replicas"] == "1" for config in configs.values())


def test_a_byte_limit_bounds_the_frames_per_partition(
    admin: KafkaAdminClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_KAFKA_TOPIC_NAMESPACE", f"t{uuid.uuid4().hex[:10]}.")
    monkeypatch.setenv("VIGIL_KAFKA_FRAMES_RETENTION_HOURS", "6")
    monkeypatch.setenv("VIGIL_KAFKA_FRAMES_RETENTION_PARTITION_BYTES", str(2 * 1024**3))
    monkeypatch.setenv("VIGIL_KAFKA_EVENTS_RETENTION_DAYS", "7")
    settings = KafkaSettings()
    ensure_topics(settings, settings.topics.all(), compacted=settings.topics.compacted())
    # The controller acknowledges the creation before the broker answering the describe has
    # applied it: until then the new topics read back without their settings.
    configs = wait_until(
        lambda: created_with_settings(admin, settings.topics.frames, settings.topics.events),
        timeout_s=30,
        what="the new topics' settings on the broker",
    )
    frames = configs[settings.topics.frames]
    assert frames["retention.ms"] == str(6 * HOUR_MS)
    assert frames["retention.bytes"] == str(2 * 1024**3)
    assert frames["segment.bytes"] == str(256 * 1024**2)  # 1/8 of the limit
    assert configs[settings.topics.events]["retention.ms"] == str(7 * DAY_MS)


def test_consumer_groups_live_in_the_namespace(
    admin: KafkaAdminClient, kafka_settings: KafkaSettings, topics: Topics
) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers.split(","))
    producer.send(topics.events, key=b"cam", value=b"{}").get(timeout=30)
    producer.close()
    name = f"sink-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(kafka_settings, topics.events, group_id=name)
    try:
        wait_until(
            lambda: any(consumer.poll(timeout_ms=500).values()), timeout_s=60, what="a record"
        )
        consumer.commit()
    finally:
        consumer.close()
    groups = {group["group_id"] for group in admin.list_groups()}
    assert kafka_settings.topic_namespace + name in groups
    assert name not in groups, "a group outside the namespace: another deployment could join it"
