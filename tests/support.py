"""Helpers for integration tests: waiting, reading topics and stored events, running services as
processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.db.models import Event
from vigil_shared.kafka import make_consumer
from vigil_shared.settings import KafkaSettings

T = TypeVar("T")


def wait_until(probe: Callable[[], T | None], *, timeout_s: float, what: str) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.25)


def read_topic(
    settings: KafkaSettings, topic: str, *, count: int, timeout_s: float = 30
) -> list[ConsumerRecord]:
    """Read ``count`` records from the start of ``topic`` (fewer only if time runs out).

    Partitions are assigned by hand: a group member that joins right after the topic was
    created can be handed no partitions and read nothing.
    """
    consumer = make_consumer(settings, group_id=f"test-reader-{uuid.uuid4().hex[:8]}")
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    try:
        partitions = wait_until(
            lambda: consumer.partitions_for_topic(topic),
            timeout_s=timeout_s,
            what=f"partitions of {topic}",
        )
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def stored_events(sessions: sessionmaker[Session], camera_id: str) -> list[tuple[object, ...]]:
    """The stored events of ``camera_id``, oldest first, as tuples of the columns the event sink
    writes: id, status, peak frame seq, captured at, score, started, ended, detected, snapshot."""
    with sessions() as session:
        query = (
            select(
                Event.event_id,
                Event.status,
                Event.frame_seq,
                Event.captured_at,
                Event.score,
                Event.started_at,
                Event.ended_at,
                Event.detected_at,
                Event.snapshot_key,
            )
            .where(Event.camera_id == camera_id)
            .order_by(Event.started_at)
        )
        return [tuple(r) for r in session.execute(query)]


class ServiceProcess:
    """A Vigil service run as ``python -m module``, as it runs in production."""

    def __init__(
        self, module: str, *, env: dict[str, str], log_path: Path, python: str = sys.executable
    ) -> None:
        self.module = module
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [python, "-m", module], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crashed machine would: no clean-up runs."""
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM and wait; returns the exit code (the service must stop by itself)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired as exc:
                self.process.kill()
                self.process.wait()
                message = f"{self.module} ignored SIGTERM:\n{self.log()[-3000:]}"
                raise AssertionError(message) from exc
        self._log.close()
        return self.process.returncode

    def assert_running(self) -> None:
        code = self.process.poll()
        assert code is None, f"{self.module} exited with {code}:\n{self.log()[-3000:]}"


def service_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    return env
