"""Kafka clients on kafka-python, configured the one way Vigil needs them.

Producers wait for all in-sync replicas and retry; consumers never auto-commit, because an offset
may only be committed once the effect of its message is durable (at-least-once).

Group consumers (inference, the event sink, camera status) share one membership policy, from
``KafkaSettings``: a short session (10 s, heartbeats every 3 s) instead of kafka-python's 45 s,
so a crashed member's partitions move within seconds, and, when ``group_instance_id`` is set,
static membership: a process restarted under the same name is handed its partitions back as soon
as it rejoins, without waiting for its old session to expire and without a rebalance. A dynamic
member leaves its group when it closes (SIGTERM); a static one does not (it is expected back),
so if it is not, its partitions move after the session timeout.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from typing import Any

from kafka import (
    ConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    TopicPartition,
)
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import (
    FencedInstanceIdError,
    InvalidReplicationFactorError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
)
from kafka.producer.future import FutureRecordMetadata

from vigil_shared.settings import KafkaSettings

log = logging.getLogger(__name__)
ERROR_HEADER = "vigil-error"
RECONNECT_BACKOFF_MAX_MS = 2_000
"""Longest wait between two attempts to reach a broker that went away (kafka-python's default,
30 s, grows that long during an outage and so delays recovery by as much once it is back)."""


class KafkaUnavailableError(RuntimeError):
    """The brokers could not be reached, or cannot hold the topics as configured; the message
    says which address or setting to check."""


class InstanceIdConflictError(RuntimeError):
    """Another live process joined this consumer group under the same static member name."""


def make_producer(settings: KafkaSettings, **overrides: Any) -> KafkaProducer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": settings.client_id,
        "bootstrap_timeout_ms": settings.bootstrap_timeout_ms,
        "acks": "all",
        "retries": 10,
        "retry_backoff_ms": 200,
        "max_in_flight_requests_per_connection": 1,  # retries must not reorder a camera's frames
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        "linger_ms": 5,
        "request_timeout_ms": settings.request_timeout_ms,
        "max_request_size": 8 * 1024 * 1024,
    }
    options.update(overrides)
    try:
        return KafkaProducer(**options)
    except KafkaTimeoutError as exc:
        raise KafkaUnavailableError(_unreachable(settings)) from exc


def make_consumer(
    settings: KafkaSettings,
    *topics: str,
    group_id: str | None,
    listener: ConsumerRebalanceListener | None = None,
    **overrides: Any,
) -> KafkaConsumer:
    """``group_id=None``: a reader outside any group, assigned partitions by hand (state topics).

    A group id is taken within the topic namespace (``KafkaSettings.consumer_group``), and a
    group member gets the membership policy of the module docstring; ``listener`` hears of
    every partition it is assigned, revoked or loses."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": settings.client_id,
        "bootstrap_timeout_ms": settings.bootstrap_timeout_ms,
        "group_id": None if group_id is None else settings.consumer_group(group_id),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 64,
        "request_timeout_ms": max(settings.request_timeout_ms, 30_500),
        "fetch_max_bytes": 16 * 1024 * 1024,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    }
    if group_id is not None:
        options.update(group_membership(settings))
    options.update(overrides)
    try:
        consumer = KafkaConsumer(*topics, **options)
    except KafkaTimeoutError as exc:
        raise KafkaUnavailableError(_unreachable(settings)) from exc
    if topics and listener is not None:
        consumer.subscribe(topics=list(topics), listener=listener)
    if group_id is not None:
        # The topics' metadata before the first join: a join without it gets no partitions,
        # and kafka-python 3.0.12 can lose the rejoin that follows when a short poll times out
        # during it (the member then stays without partitions and without heartbeats).
        for topic in topics:
            consumer.partitions_for_topic(topic)
    return consumer


def group_membership(settings: KafkaSettings) -> dict[str, Any]:
    """Session, heartbeat and rebalance options of every group consumer (module docstring)."""
    options: dict[str, Any] = {
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_poll_interval_ms": settings.max_poll_interval_ms,
    }
    if settings.group_instance_id is not None:
        options["group_instance_id"] = settings.group_instance_id
    return options


class PartitionChanges(ConsumerRebalanceListener):  # type: ignore[misc]
    """What rebalances did to a consumer's partitions since it last looked.

    kafka-python calls a listener from its network thread while ``poll`` waits, so the record is
    locked. ``epoch(tp)`` grows each time ``tp`` is revoked or lost: records read before that
    belong to the old ownership even if the partition came straight back (an eager rebalance
    revokes everything, then reassigns), and must not be handled as the new owner's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epochs: dict[TopicPartition, int] = {}
        self._revoked: set[TopicPartition] = set()
        self._assigned: set[TopicPartition] = set()

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        with self._lock:
            for tp in revoked:
                self._epochs[tp] = self._epochs.get(tp, 0) + 1
                self._revoked.add(tp)
                self._assigned.discard(tp)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        with self._lock:
            self._assigned.update(assigned)

    def epoch(self, tp: TopicPartition) -> int:
        with self._lock:
            return self._epochs.get(tp, 0)

    def stamp(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The current epoch of each partition, to check later with ``changed``."""
        with self._lock:
            return {tp: self._epochs.get(tp, 0) for tp in partitions}

    def changed(self, stamps: dict[TopicPartition, int]) -> set[TopicPartition]:
        """The partitions of ``stamps`` revoked or lost since they were stamped."""
        with self._lock:
            return {tp for tp, epoch in stamps.items() if self._epochs.get(tp, 0) != epoch}

    def take(self) -> tuple[set[TopicPartition], set[TopicPartition]]:
        """(revoked or lost, assigned) since the last call; a partition revoked and assigned
        again is in both."""
        with self._lock:
            revoked, assigned = self._revoked, self._assigned
            self._revoked, self._assigned = set(), set()
            return revoked, assigned


def ensure_topics(
    settings: KafkaSettings, topics: tuple[str, ...], *, compacted: tuple[str, ...] = ()
) -> None:
    """Create the topics if they are missing (the client waits ``bootstrap_timeout_ms``), with
    the settings' partitions, replication factor and ``min.insync.replicas``.

    Topics named in ``compacted`` keep the latest record per key for ever (state, not a log);
    the others get the retention of ``topic_configs``. A topic that exists keeps its settings.
    """
    configs = topic_configs(settings)
    # Explicit on every topic, whatever the broker's default: with acks=all, a write is
    # acknowledged once this many copies hold it.
    durability = {"min.insync.replicas": str(settings.min_insync)}
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers.split(","),
            client_id=f"{settings.client_id}-admin",
            bootstrap_timeout_ms=settings.bootstrap_timeout_ms,
        )
    except KafkaTimeoutError as exc:
        raise KafkaUnavailableError(_unreachable(settings)) from exc
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            new = [
                NewTopic(
                    t,
                    num_partitions=settings.partitions,
                    replication_factor=settings.replication_factor,
                    topic_configs={
                        **(COMPACTED if t in compacted else configs.get(t, {})),
                        **durability,
                    },
                )
                for t in missing
            ]
            # Another service may create one between our list and create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
    except InvalidReplicationFactorError as exc:
        raise KafkaUnavailableError(
            f"Kafka at {settings.bootstrap_servers} has fewer brokers than "
            f"VIGIL_KAFKA_REPLICATION_FACTOR={settings.replication_factor}; lower it, or start "
            "the cluster's other brokers"
        ) from exc
    finally:
        admin.close()


COMPACTED = {"cleanup.policy": "compact"}
MIN_SEGMENT_BYTES = 1024**2  # Kafka refuses smaller segments
MAX_SEGMENT_BYTES = 1024**3  # Kafka's default


def topic_configs(settings: KafkaSettings) -> dict[str, dict[str, str]]:
    """Each topic's Kafka settings: retention in time (and bytes for frames), compaction for
    state. Kafka deletes whole closed segments, so a segment spans at most 1/24 of the
    retention (and 1/8 of the byte limit): nothing outlives its policy by more than that, plus
    the broker's 5-minute retention check."""
    topics = settings.topics
    frames = _retention(settings.frames_retention_hours * 3_600_000)
    if settings.frames_retention_partition_bytes is not None:
        limit = settings.frames_retention_partition_bytes
        frames["retention.bytes"] = str(limit)
        frames["segment.bytes"] = str(min(max(limit // 8, MIN_SEGMENT_BYTES), MAX_SEGMENT_BYTES))
    events = _retention(settings.events_retention_days * 86_400_000)
    return {
        topics.frames: frames,
        topics.frames_dead_letter: frames,  # footage too: the same lifetime
        topics.events: events,
        topics.events_dead_letter: events,
        topics.camera_status: events,
        topics.model_assignments: COMPACTED,
        topics.scoring_status: COMPACTED,
        topics.shadow_scores: events,  # a shadow report reads them back within its span
        topics.replay_events: events,
    }


def _retention(milliseconds: float) -> dict[str, str]:
    retention = max(int(milliseconds), 60_000)
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(retention),
        "segment.ms": str(max(retention // 24, 60_000)),
    }


def dead_letter(
    producer: KafkaProducer, topic: str, record: ConsumerRecord, reason: str
) -> FutureRecordMetadata:
    """Copy ``record`` to a dead-letter topic with the reason in the ``vigil-error`` header;
    the future says whether Kafka took it."""
    log.warning(
        "record sent to dead-letter topic",
        extra={
            "source_topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "reason": reason[:300],
        },
    )
    headers = [*(record.headers or []), (ERROR_HEADER, reason.encode()[:1000])]
    return producer.send(topic, key=record.key, value=record.value or b"", headers=headers)


def header(headers: list[tuple[str, bytes]] | None, name: str) -> str | None:
    for key, value in headers or []:
        if key == name:
            return value.decode("utf-8", "replace")
    return None


def _unreachable(settings: KafkaSettings) -> str:
    return (
        f"Kafka is unreachable at {settings.bootstrap_servers}; start it "
        "(scripts/stack.sh start) or set VIGIL_KAFKA_BOOTSTRAP_SERVERS"
    )


def rewind_to_committed(consumer: KafkaConsumer) -> None:
    """Seek every assigned partition back to its committed offset (its start when it has none),
    so what was read but not committed before a failure is read again."""
    for tp in consumer.assignment():
        committed = consumer.committed(tp)
        if committed is None:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)


class BrokerOutage:
    """What a consumer loop does when Kafka fails under it (a broker restarting, a coordinator
    moving): log it, wait a growing pause (0.5 s doubling to ``max_pause_s``, short: the pause
    still running when the broker is back delays the recovery by as much), and have the loop
    rewind to its committed offsets before it reads again. The process stays up and loses
    nothing: every consumer here commits only what it has fully handled, and handles a record
    twice the same way."""

    def __init__(self, name: str, *, max_pause_s: float = 2.0) -> None:
        self.name = name
        self.max_pause_s = max_pause_s
        self.pause_s = 0.5
        self.failures = 0
        self.rewind_pending = False

    def failed(self, exc: KafkaError, stop: threading.Event) -> None:
        """Wait, then have the loop rewind; a static member fenced by another process under its
        name stops instead: waiting would only fence that one in turn."""
        if isinstance(exc, FencedInstanceIdError):
            raise InstanceIdConflictError(
                f"{self.name}: another process joined the group as VIGIL_KAFKA_GROUP_INSTANCE_ID "
                "of this one; give every process its own name"
            ) from exc
        self.failures += 1
        self.rewind_pending = True
        log.warning(
            "%s: Kafka failed (%s: %s); retrying in %.1fs from the committed offsets",
            self.name,
            type(exc).__name__,
            exc,
            self.pause_s,
        )
        stop.wait(self.pause_s)
        self.pause_s = min(self.pause_s * 2, self.max_pause_s)

    def recover(self, consumer: KafkaConsumer) -> bool:
        """Rewind if a failure asked for it; True when it did (the caller resets its state)."""
        if not self.rewind_pending:
            return False
        rewind_to_committed(consumer)
        self.rewind_pending = False
        self.pause_s = 0.5
        log.info("%s: Kafka is back; reading again from the committed offsets", self.name)
        return True
