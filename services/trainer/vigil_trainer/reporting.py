"""A running job's voice: progress into its row, lines into ``job_logs``, and the cancel check.

Progress is written at most once a second (a training step can take milliseconds) and the
cancel flag is read at most once a second, so a job costs the database a couple of statements
a second however fast it trains.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.db.models import Job, JobLog
from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.jobs import JobStatus

log = logging.getLogger("vigil_trainer")
STOPPING = frozenset({JobStatus.CANCELLING, JobStatus.CANCELLED})


class JobReporter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        job_id: uuid.UUID,
        *,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.job_id = job_id
        self.interval_s = interval_s
        self.clock = clock
        self._last_write = -float("inf")
        self._last_check = -float("inf")
        self._stopping = False
        self.writes = 0
        self.context: dict[str, Any] = {}
        """Merged into every progress dict (the worker's id); each write also carries a
        ``heartbeat`` time, which tells a redelivered copy of the job that this worker lives."""

    def progress(self, update: dict[str, Any], *, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last_write < self.interval_s:
            return
        self._last_write = now
        value = {**self.context, **update, "heartbeat": utc_now().isoformat()}
        with self.sessions.begin() as session:
            job = session.get(Job, self.job_id)
            if job is not None:
                job.progress = _json_safe(value)
        self.writes += 1

    def log(self, level: str, message: str) -> None:
        log.log(logging.getLevelName(level.upper()), message)
        with self.sessions.begin() as session:
            session.add(JobLog(job_id=self.job_id, level=level, message=message))

    def should_stop(self) -> bool:
        """True once the operator asked to cancel; reads the row at most every interval."""
        now = self.clock()
        if self._stopping or now - self._last_check < self.interval_s:
            return self._stopping
        self._last_check = now
        with self.sessions() as session:
            status = session.scalar(select(Job.status).where(Job.id == self.job_id))
        self._stopping = status in STOPPING
        return self._stopping


def _json_safe(value: Any) -> Any:
    """NaN is not JSON (PostgreSQL refuses it): an undefined metric becomes null."""
    if isinstance(value, float):
        return None if value != value or value in (float("inf"), float("-inf")) else value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
