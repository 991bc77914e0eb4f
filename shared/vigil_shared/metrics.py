"""Prometheus metrics that several processes share: serving ``/metrics`` (with ``/healthz`` and
``/readyz``, see ``vigil_shared.health``), and what every Kafka consumer loop exports (records
handled, dead letters, lag), so one alert rule covers them all.

Each process keeps its own ``CollectorRegistry`` (built at start-up, passed in), never the
module-global default, so tests can build as many as they like.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge

from vigil_shared.health import Readiness, ready, serve_app

if TYPE_CHECKING:  # the trainer serves metrics too, without a consumer to watch
    from kafka import KafkaConsumer

log = logging.getLogger(__name__)
LAG_EVERY_S = 5.0


class MetricsPortError(RuntimeError):
    """The metrics port could not be bound; the message names the variable to change."""


def serve_metrics(
    registry: CollectorRegistry, port: int, *, variable: str, readiness: Readiness = ready
) -> WSGIServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` (what ``readiness`` lists) on ``port``
    (0: any free one, logged) on a daemon thread; ``shutdown()`` stops it."""
    try:
        server = serve_app(registry, readiness, port=port)
    except OSError as exc:
        raise MetricsPortError(
            f"cannot serve metrics on port {port} ({exc.strerror}); "
            f"set {variable} to a free port, or unset it"
        ) from exc
    log.info("metrics served", extra={"port": server.server_port})
    return server


class ConsumerMetrics:
    """A consumer loop's metrics, labelled with its name (``event-sink``, ``camera-status``)."""

    def __init__(self, consumer: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records = Counter(
            "vigil_consumer_records", "Records read", ["consumer"], registry=r
        ).labels(consumer)
        self.dead_letters = Counter(
            "vigil_consumer_dead_letters",
            "Records sent to a dead-letter topic (invalid input)",
            ["consumer"],
            registry=r,
        ).labels(consumer)
        self.lag = Gauge(
            "vigil_consumer_lag",
            "Records waiting in the assigned partitions (last fetched end minus position)",
            ["consumer"],
            registry=r,
        ).labels(consumer)
        self._lag_due = 0.0

    def measure_lag(self, consumer: KafkaConsumer) -> None:
        """Every ``LAG_EVERY_S``: ``consumer_lag``."""
        now = time.monotonic()
        if now < self._lag_due:
            return
        self._lag_due = now + LAG_EVERY_S
        self.lag.set(consumer_lag(consumer))


def consumer_lag(consumer: KafkaConsumer) -> int:
    """Records waiting in the consumer's assigned partitions: each one's high watermark as its
    last fetch brought it back, minus the position. No request of its own: a ListOffsets
    request (``end_offsets``) queues behind the consumer's long-polling fetch on the broker's
    connection and stalls the caller until that fetch returns (up to ``fetch_max_wait_ms``,
    500 ms), which made every frame in flight 0.2-0.5 s late in inference, every 5 s."""
    lag = 0
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        if end is not None:  # None until a fetch of it has returned
            lag += max(0, end - consumer.position(tp))
    return lag
