"""What the API's consumer processes (event sink, camera status) share from start to exit.

Each is its own process so it fails and scales alone; they start the same way: wait for the
database, make sure the topics exist, build the consumer, serve its metrics when a port is set,
and exit with status 2 and one clear line when PostgreSQL or Kafka cannot be reached or the
metrics port is taken (the supervisor restarts it), rather than a traceback.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from vigil_api.core.settings import ApiSettings, get_settings
from vigil_shared.db.engine import (
    DatabaseUnavailableError,
    make_engine,
    make_session_factory,
    wait_for_database,
)
from vigil_shared.kafka import KafkaUnavailableError, ensure_topics
from vigil_shared.lifecycle import stop_on_signals
from vigil_shared.logging import configure_logging
from vigil_shared.metrics import ConsumerMetrics, MetricsPortError, serve_metrics


class Runner(Protocol):
    def run(self, stop: threading.Event) -> None: ...


Build = Callable[[ApiSettings, sessionmaker[Session], ConsumerMetrics], Runner]


@dataclass(frozen=True)
class MetricsPort:
    """Which setting holds a consumer process's metrics port, and its variable for errors."""

    variable: str
    of: Callable[[ApiSettings], int | None]


def run_consumer(name: str, build: Build, port: MetricsPort) -> None:
    """Run what ``build`` makes until SIGTERM/SIGINT; ``name`` labels logs, metrics and the
    exit line."""
    settings = get_settings()
    common = settings.common
    configure_logging(name, common.log_level)
    stop = stop_on_signals()
    engine = make_engine(common.database)
    try:
        wait_for_database(engine)
        topics = common.kafka.topics
        ensure_topics(common.kafka, topics.all(), compacted=topics.compacted())
        metrics = ConsumerMetrics(name)
        runner = build(settings, make_session_factory(engine), metrics)
        metrics_port = port.of(settings)
        if metrics_port is not None:
            serve_metrics(metrics.registry, metrics_port, variable=port.variable)
    except (DatabaseUnavailableError, KafkaUnavailableError, MetricsPortError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        runner.run(stop)
    finally:
        engine.dispose()
