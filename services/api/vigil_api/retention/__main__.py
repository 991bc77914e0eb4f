"""``python -m vigil_api.retention``: the retention sweep, every
``VIGIL_API_RETENTION_INTERVAL_S``, until SIGTERM.

A process of its own, from the API's image, rather than a thread of the API or a Celery beat in
the trainer: it deletes through the API's own deletion code (the audit log, tombstones, S3), it
fails and restarts alone without taking requests down, and the trainer (torch, GPUs, one beat
process to keep single beside its workers) needs none of it. Running two is harmless: they take
turns on a database lock.
"""

from __future__ import annotations

import logging
import math
import sys

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError

from vigil_api.core.settings import ApiSettings, get_settings
from vigil_api.domain.deletion import Buckets
from vigil_api.retention.policy import kafka_outlives, load_policy
from vigil_api.retention.sweep import RetentionMetrics, RetentionSweep
from vigil_shared.db.engine import DatabaseUnavailableError, make_engine, wait_for_database
from vigil_shared.lifecycle import stop_on_signals
from vigil_shared.logging import configure_logging
from vigil_shared.metrics import MetricsPortError, serve_metrics
from vigil_shared.settings import KafkaSettings
from vigil_shared.storage import StorageError, ensure_buckets, make_s3_client

log = logging.getLogger("vigil_api.retention")


def topic_retention_ms(kafka: KafkaSettings) -> tuple[int | None, int | None]:
    """The frames and events topics' ``retention.ms`` as the brokers hold them (a topic keeps
    the settings it was created with); None for one that cannot be read."""
    topics = (kafka.topics.frames, kafka.topics.events)
    admin = KafkaAdminClient(
        bootstrap_servers=kafka.bootstrap_servers.split(","),
        client_id=f"{kafka.client_id}-retention",
        bootstrap_timeout_ms=kafka.bootstrap_timeout_ms,
    )
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        described = admin.describe_configs(resources).get("topic", {})
    finally:
        admin.close()
    values = [described.get(topic, {}).get("retention.ms", {}).get("value") for topic in topics]
    frames, events = (int(v) if v is not None else None for v in values)
    return frames, events


def check_kafka(settings: ApiSettings, sweep: RetentionSweep) -> None:
    """Warn where Kafka keeps frames or events longer than the policy allows."""
    try:
        frames_ms, events_ms = topic_retention_ms(settings.common.kafka)
    except KafkaError as exc:
        log.warning("could not read the topics' retention from Kafka: %s", exc)
        return
    with sweep.sessions() as session:
        policy = load_policy(session, max_days=settings.retention_max_days)
    for problem in kafka_outlives(policy, frames_ms=frames_ms, events_ms=events_ms):
        log.warning(problem)


def build(settings: ApiSettings) -> RetentionSweep:
    common = settings.common
    engine = make_engine(common.database)
    wait_for_database(engine)
    s3 = make_s3_client(common.s3)
    ensure_buckets(s3, common.s3)
    metrics = RetentionMetrics()
    if settings.retention_metrics_port is not None:
        port, variable = settings.retention_metrics_port, "VIGIL_API_RETENTION_METRICS_PORT"
        serve_metrics(metrics.registry, port, variable=variable)
    return RetentionSweep(
        engine=engine,
        s3=s3,
        buckets=Buckets(
            snapshots=common.s3.snapshots_bucket,
            datasets=common.s3.datasets_bucket,
            models=common.s3.models_bucket,
        ),
        max_days=settings.retention_max_days,
        # A deleted event's messages may be read from Kafka this long: its tombstone stays.
        tombstone_days=math.ceil(common.kafka.events_retention_days) + 1,
        metrics=metrics,
    )


def main() -> None:
    settings = get_settings()
    configure_logging("retention", settings.common.log_level)
    stop = stop_on_signals()
    try:
        sweep = build(settings)
    except (DatabaseUnavailableError, StorageError, MetricsPortError) as exc:
        print(f"retention: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        check_kafka(settings, sweep)
        sweep.run(stop, interval_s=settings.retention_interval_s)
    finally:
        sweep.close()


if __name__ == "__main__":
    main()
