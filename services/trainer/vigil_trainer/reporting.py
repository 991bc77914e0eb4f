"""A running job's voice: progress into its row, lines into ``job_logs``, the cancel check, and
the heartbeat that says its worker lives.

Progress is written at most once a second (a training step can take milliseconds) and the
cancel flag is read at most once a second, so a job costs the database a couple of statements
a second however fast it trains. The heartbeat is separate: a thread of its own writes it every
few seconds whatever the job is doing (decoding a dataset, a long epoch, an upload), so a job
whose worker died is told from a slow one within a minute (the API shows it ``worker_lost`` and
re-queues or fails it).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
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


class Heartbeat:
    """Writes ``heartbeat`` (and ``worker``) into the job's progress every ``interval_s`` on a
    thread of its own, from ``with Heartbeat(...)`` until the block ends.

    A beat merges into the progress the reporter writes (it never replaces it), and only while
    the row is a running (or cancelling) job of this worker: once the job is finished, or given
    to another worker after this one was taken for lost, it stops claiming it. A beat that
    fails (the database briefly away) is logged and the next one tried."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        job_id: uuid.UUID,
        *,
        worker: str,
        interval_s: float,
    ) -> None:
        self._sessions = sessions
        self._job_id = job_id
        self._worker = worker
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)
        self.beats = 0

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval_s + 5)

    def beat(self) -> bool:
        """One beat now; False when the row is no longer this worker's running job."""
        beat = func.jsonb_build_object("heartbeat", utc_now().isoformat(), "worker", self._worker)
        with self._sessions.begin() as session:
            result = session.execute(
                update(Job)
                .where(
                    Job.id == self._job_id,
                    Job.status.in_([JobStatus.RUNNING, JobStatus.CANCELLING]),
                    Job.progress["worker"].astext == self._worker,
                )
                .values(progress=Job.progress.op("||")(beat))
            )
        self.beats += 1
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.beat()
            except SQLAlchemyError as exc:
                log.warning("heartbeat not written; trying again", extra={"error": str(exc)})


def _json_safe(value: Any) -> Any:
    """NaN is not JSON (PostgreSQL refuses it): an undefined metric becomes null."""
    if isinstance(value, float):
        return None if value != value or value in (float("inf"), float("-inf")) else value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
