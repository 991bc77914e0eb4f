"""The trainer's Prometheus metrics, read at each scrape from where the truth lives: the queue's
length in Redis, the jobs' states and run times in PostgreSQL.

Jobs run in Celery's forked worker processes, which cannot serve metrics of their own; the
main process serves these instead, so they stay right whichever process ran a job, and whether
the job failed on bad input (recorded, not raised) or crashed. Every trainer replica reports the
same fleet-wide figures: aggregate them with ``max``, not ``sum``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from vigil_shared.queues import TASK_QUEUE
from vigil_shared.schemas.jobs import JobStatus
from vigil_trainer.settings import TrainerSettings

log = logging.getLogger(__name__)
DURATION_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0)
# kombu's Redis transport keeps a list per priority step: the queue's name, then name\x06\x16<p>.
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")

_STATUS_COUNTS = text("SELECT status, count(*) FROM jobs GROUP BY status")
_DURATIONS = text(
    "SELECT status, extract(epoch FROM finished_at - started_at) FROM jobs "
    "WHERE started_at IS NOT NULL AND finished_at IS NOT NULL"
)


class TrainerCollector(Collector):
    """Queue depth, jobs by status and finished jobs' durations, read when scraped."""

    def __init__(self, *, engine: Engine, redis: Redis, queue: str = TASK_QUEUE) -> None:
        self._engine = engine
        self._redis = redis
        self._queue = queue

    def describe(self) -> Iterator[Metric]:
        """The families without samples: registering must not query Redis or PostgreSQL."""
        yield _queue_depth()
        yield _jobs_by_status([])
        yield _durations([])

    def collect(self) -> Iterator[Metric]:
        """What a scrape reads; a server that does not answer leaves its families out (logged)."""
        try:
            waiting = sum(self._redis.llen(self._queue + s) for s in PRIORITY_SUFFIXES)
            yield _queue_depth(waiting)
        except RedisError as exc:
            log.warning("queue depth unavailable: %s", exc)
        try:
            with self._engine.connect() as conn:
                counts = [(str(s), int(n)) for s, n in conn.execute(_STATUS_COUNTS)]
                durations = [(str(s), float(d)) for s, d in conn.execute(_DURATIONS)]
        except SQLAlchemyError as exc:
            log.warning("job metrics unavailable: %s", exc)
            return
        yield _jobs_by_status(counts)
        yield _durations(durations)


def _queue_depth(waiting: int | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "vigil_trainer_queue_depth", "Jobs waiting in the Celery queue for a worker"
    )
    if waiting is not None:
        family.add_metric([], waiting)
    return family


def _jobs_by_status(counts: Iterable[tuple[str, int]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily("vigil_trainer_jobs", "Jobs in each status", labels=["status"])
    found = dict(counts)
    for status in JobStatus:  # every status, 0 included, so a rule's series never vanishes
        family.add_metric([status.value], found.get(status.value, 0))
    return family


def _durations(durations: Iterable[tuple[str, float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "vigil_trainer_job_duration_seconds",
        "Run time of finished jobs, start to finish, by final status",
        labels=["status"],
    )
    by_status: dict[str, list[float]] = {}
    for status, seconds in durations:
        by_status.setdefault(status, []).append(seconds)
    for status, values in sorted(by_status.items()):
        buckets = [(str(b), sum(1 for v in values if v <= b)) for b in DURATION_BUCKETS]
        buckets.append(("+Inf", len(values)))
        family.add_metric([status], buckets, sum(values))
    return family


def trainer_registry(settings: TrainerSettings) -> CollectorRegistry:
    """A registry with the collector, on its own clients: a connection per scrape (NullPool),
    so nothing open is inherited by the worker processes Celery forks."""
    common = settings.common
    engine = create_engine(
        common.database.url.get_secret_value(),
        poolclass=NullPool,
        connect_args={"connect_timeout": 5},
    )
    redis = Redis.from_url(common.redis.url, socket_timeout=5)
    registry = CollectorRegistry()
    registry.register(TrainerCollector(engine=engine, redis=redis))
    return registry
