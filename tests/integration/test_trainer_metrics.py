"""The trainer's metrics, read from the real Redis queue and the jobs table, and served."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_job
from vigil_shared.metrics import serve_metrics
from vigil_shared.schemas.jobs import JobStatus
from vigil_shared.settings import CommonSettings
from vigil_trainer.metrics import PRIORITY_SUFFIXES, TrainerCollector, trainer_registry
from vigil_trainer.settings import TrainerSettings


@pytest.fixture
def redis(settings: CommonSettings) -> Iterator[Redis]:
    client = Redis.from_url(settings.redis.url)
    yield client
    client.close()


@pytest.fixture
def queue(redis: Redis) -> Iterator[str]:
    name = f"test-training-{uuid.uuid4().hex[:8]}"
    yield name
    redis.delete(*(name + suffix for suffix in PRIORITY_SUFFIXES))


def add_jobs(sessions: sessionmaker[Session], *runs: tuple[JobStatus, float | None]) -> None:
    """Jobs in these statuses, each run for so many seconds (None: never finished)."""
    start = datetime.now(UTC) - timedelta(hours=1)
    for status, seconds in runs:
        finished = None if seconds is None else start + timedelta(seconds=seconds)
        add_job(sessions, name="metrics", status=status, started_at=start, finished_at=finished)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_queue_depth_jobs_and_durations_come_from_redis_and_postgresql(
    engine: Engine, sessions: sessionmaker[Session], redis: Redis, queue: str
) -> None:
    registry = CollectorRegistry()
    registry.register(TrainerCollector(engine=engine, redis=redis, queue=queue))
    before = {s: sample(registry, "vigil_trainer_jobs", status=s.value) for s in JobStatus}
    failed_runs = sample(registry, "vigil_trainer_job_duration_seconds_count", status="failed")
    redis.rpush(queue, "job-1", "job-2")
    redis.rpush(queue + "\x06\x169", "job-3")  # a higher priority step: its own list
    add_jobs(
        sessions,
        (JobStatus.FAILED, 30.0),
        (JobStatus.SUCCEEDED, 600.0),
        (JobStatus.SUCCEEDED, 4000.0),
        (JobStatus.RUNNING, None),
    )

    assert sample(registry, "vigil_trainer_queue_depth") == 3
    after = {s: sample(registry, "vigil_trainer_jobs", status=s.value) for s in JobStatus}
    assert {s: after[s] - before[s] for s in JobStatus if after[s] != before[s]} == {
        JobStatus.FAILED: 1,
        JobStatus.SUCCEEDED: 2,
        JobStatus.RUNNING: 1,
    }
    assert after[JobStatus.CANCELLED] == before[JobStatus.CANCELLED]  # reported at 0 as well
    failed_now = sample(registry, "vigil_trainer_job_duration_seconds_count", status="failed")
    assert failed_now == failed_runs + 1
    succeeded = "vigil_trainer_job_duration_seconds_bucket"
    assert sample(registry, succeeded, status="succeeded", le="900.0") < sample(
        registry, succeeded, status="succeeded", le="7200.0"
    )


def test_the_trainer_serves_its_metrics() -> None:
    server = serve_metrics(
        trainer_registry(TrainerSettings()), 0, variable="VIGIL_TRAINER_METRICS_PORT"
    )
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert "vigil_trainer_queue_depth " in text
    assert 'vigil_trainer_jobs{status="failed"}' in text
