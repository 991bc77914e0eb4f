"""The retention sweep: every ``VIGIL_API_RETENTION_INTERVAL_S``, delete what is older than its
camera's policy (``policy.py``), through the same functions as the DELETE routes
(``domain/deletion.py``), so each deletion is audited (actor ``retention``):

1. events whose start is older than their camera's days, with their snapshots, in batches
   (and any deleted event that a message being stored at that moment brought back);
2. snapshot objects older than that whose event has no row (an upload that lost its message,
   or a late one after the event was deleted);
3. dataset versions built from cameras whose oldest frame is older than the strictest policy
   of their cameras; one a model's lineage or an unfinished job still needs is kept, logged
   and counted (``vigil_retention_held_datasets``) until that model is deleted or an operator
   deletes the dataset with ``force``;
4. tombstones of deleted events once the events topic holds no message of them.

Several processes may run it: a PostgreSQL advisory lock lets one sweep at a time, and every
step is idempotent (a sweep cut short is finished by the next).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime

from minio import Minio
from minio.error import S3Error
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from urllib3.exceptions import HTTPError

from vigil_api.domain.deletion import (
    Audit,
    Buckets,
    Deletion,
    InUseError,
    delete_dataset,
    delete_events,
    forget_deleted_events,
)
from vigil_api.retention.policy import DAY, Policy, load_policy
from vigil_shared.datasets import DatasetManifest
from vigil_shared.db.engine import make_session_factory
from vigil_shared.db.models import Camera, Dataset, DeletedEvent, Event
from vigil_shared.schemas.frames import utc_now
from vigil_shared.storage import StorageError, get_bytes, remove_keys

log = logging.getLogger("vigil_api.retention")
ACTOR = "retention"
LOCK_KEY = 0x5649_4749_4C52  # "VIGILR": one sweep at a time, whatever the process
BATCH = 500
FAILURES = (SQLAlchemyError, StorageError, S3Error, HTTPError, OSError)


@dataclass
class SweepReport:
    events: int = 0
    snapshots: int = 0
    datasets: int = 0
    held: list[str] = field(default_factory=list)
    tombstones: int = 0


class RetentionMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.deleted = Counter(
            "vigil_retention_deleted", "Deleted by retention", ["kind"], registry=r
        )
        self.held = Gauge(
            "vigil_retention_held_datasets",
            "Datasets past their cameras' retention that a model or job still needs",
            registry=r,
        )
        self.last_success = Gauge(
            "vigil_retention_last_success_timestamp_seconds",
            "When the last retention sweep finished (the process's start before the first)",
            registry=r,
        )
        self.last_success.set_to_current_time()
        self.failures = Counter("vigil_retention_failures", "Sweeps that failed", registry=r)


class RetentionSweep:
    def __init__(
        self,
        *,
        engine: Engine,
        s3: Minio,
        buckets: Buckets,
        max_days: int,
        tombstone_days: float,
        metrics: RetentionMetrics,
        batch: int = BATCH,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self.sessions = make_session_factory(engine)
        self._s3 = s3
        self._buckets = buckets
        self._max_days = max_days
        self._tombstone_days = tombstone_days
        self._batch = batch
        self._clock = clock
        self.metrics = metrics

    def close(self) -> None:
        self._engine.dispose()

    def run(self, stop: threading.Event, *, interval_s: float) -> None:
        while not stop.is_set():
            try:
                self.sweep()
            except FAILURES as exc:  # the next sweep finishes what this one left
                self.metrics.failures.inc()
                log.warning("retention sweep failed: %s: %s", type(exc).__name__, exc)
            stop.wait(interval_s)

    def sweep(self, *, now: datetime | None = None) -> SweepReport | None:
        """One sweep; None when another process holds the sweep lock."""
        now = now or self._clock()
        with self._engine.connect() as lock:
            if not lock.scalar(select(func.pg_try_advisory_lock(LOCK_KEY))):
                log.info("another retention sweep is running; skipped")
                return None
            try:
                report = self._sweep(now)
            finally:
                lock.scalar(select(func.pg_advisory_unlock(LOCK_KEY)))
        for kind in ("events", "snapshots", "datasets"):
            self.metrics.deleted.labels(kind).inc(getattr(report, kind))
        self.metrics.held.set(len(report.held))
        self.metrics.last_success.set(self._clock().timestamp())
        log.info("retention sweep done", extra={"report": asdict(report)})
        return report

    def _sweep(self, now: datetime) -> SweepReport:
        with self.sessions() as session:
            policy = load_policy(session, max_days=self._max_days)
        report = SweepReport(events=self._events(policy, now) + self._stored_again())
        report.snapshots = self._orphan_snapshots(policy, now)
        report.datasets, report.held = self._datasets(policy, now)
        with self.sessions.begin() as session:
            before = now - self._tombstone_days * DAY
            report.tombstones = forget_deleted_events(session, before=before)
        return report

    def _events(self, policy: Policy, now: datetime) -> int:
        days = func.least(func.coalesce(Camera.retention_days, policy.max_days), policy.max_days)
        expired = (
            select(Event)
            .outerjoin(Camera, Camera.id == Event.camera_id)
            .where(Event.started_at + func.make_interval(0, 0, 0, days) < now)
            .order_by(Event.started_at)
            .limit(self._batch)
            .with_for_update(of=Event, skip_locked=True)
        )
        total = 0
        while True:
            with self.sessions.begin() as session:
                events = session.scalars(expired).all()
                by_camera: dict[str, list[Event]] = defaultdict(list)
                for event in events:
                    by_camera[event.camera_id].append(event)
                for camera_id, batch in by_camera.items():
                    total += delete_events(
                        session=session,
                        s3=self._s3,
                        bucket=self._buckets.snapshots,
                        events=batch,
                        deletion=_why(policy, camera_id),
                    )
            if len(events) < self._batch:
                return total

    def _stored_again(self) -> int:
        """Events deleted while a message of theirs was being stored (the sink checked the
        tombstone just before it was written): deleted again."""
        with self.sessions.begin() as session:
            tombstoned = select(DeletedEvent.event_id)
            events = session.scalars(select(Event).where(Event.event_id.in_(tombstoned))).all()
            return delete_events(
                session=session,
                s3=self._s3,
                bucket=self._buckets.snapshots,
                events=events,
                deletion=Deletion(ACTOR, "deleted before; a message in flight stored it again"),
            )

    def _orphan_snapshots(self, policy: Policy, now: datetime) -> int:
        total = 0
        for camera_id in self._snapshot_cameras():
            cutoff = policy.cutoff(policy.days(camera_id), now)
            old: dict[uuid.UUID, list[str]] = defaultdict(list)
            prefix = f"events/{camera_id}/"
            for obj in self._s3.list_objects(
                self._buckets.snapshots, prefix=prefix, recursive=True
            ):
                event_id = _event_of(obj.object_name or "")
                if event_id is not None and obj.last_modified and obj.last_modified < cutoff:
                    old[event_id].append(obj.object_name or "")
            for chunk in _chunks(list(old), self._batch):
                with self.sessions.begin() as session:
                    alive = set(
                        session.scalars(select(Event.event_id).where(Event.event_id.in_(chunk)))
                    )
                    orphans = [event_id for event_id in chunk if event_id not in alive]
                    if not orphans:
                        continue
                    remove_keys(
                        self._s3, self._buckets.snapshots, [k for e in orphans for k in old[e]]
                    )
                    Audit(session, _why(policy, camera_id)).record(
                        kind="snapshots",
                        target=camera_id,
                        detail={"count": len(orphans), "event_ids": [str(e) for e in orphans]},
                    )
                total += len(orphans)
        return total

    def _snapshot_cameras(self) -> list[str]:
        listed = self._s3.list_objects(self._buckets.snapshots, prefix="events/", recursive=False)
        names = [obj.object_name or "" for obj in listed if obj.is_dir]
        return [name.removeprefix("events/").rstrip("/") for name in names if name]

    def _datasets(self, policy: Policy, now: datetime) -> tuple[int, list[str]]:
        with self.sessions() as session:
            footage = select(Dataset.id).where(func.cardinality(Dataset.camera_ids) > 0)
            ids = session.scalars(footage).all()
        deleted, held = 0, []
        for dataset_id in ids:
            with self.sessions.begin() as session:
                row = session.get(Dataset, dataset_id)
                if row is None:
                    continue
                days = policy.strictest(row.camera_ids)
                if self._footage_from(row) >= policy.cutoff(days, now):
                    continue
                deletion = Deletion(ACTOR, f"retention: footage older than {days} days")
                try:
                    delete_dataset(
                        session=session,
                        s3=self._s3,
                        bucket=self._buckets.datasets,
                        row=row,
                        deletion=deletion,
                        force=False,
                    )
                except InUseError as exc:
                    held.append(f"{row.name}@{row.version}")
                    log.warning("dataset kept past its cameras' retention: %s", exc)
                else:
                    deleted += 1
        return deleted, held

    def _footage_from(self, row: Dataset) -> datetime:
        """When the dataset's oldest camera frame was captured, read once from its manifest."""
        if row.footage_from is None:
            try:
                raw = get_bytes(self._s3, self._buckets.datasets, row.manifest_key)
            except S3Error as exc:
                if exc.code != "NoSuchKey":
                    raise
                log.warning("dataset %s@%s has no manifest in S3", row.name, row.version)
                row.footage_from = row.created_at
                return row.footage_from
            items = DatasetManifest.model_validate_json(raw).items
            times = [i.captured_at for i in items if i.camera_id and i.captured_at]
            row.footage_from = min(times, default=row.created_at)
        return row.footage_from


def _why(policy: Policy, camera_id: str) -> Deletion:
    days = policy.days(camera_id)
    whose = "the camera's policy" if days < policy.max_days else "the global maximum"
    return Deletion(ACTOR, f"retention: older than {days} days ({whose})")


def _event_of(key: str) -> uuid.UUID | None:
    """The event id of a snapshot key (``events/<camera>/<event id>/<file>``)."""
    parts = key.split("/")
    if len(parts) != 4:
        return None
    try:
        return uuid.UUID(parts[2])
    except ValueError:
        return None


def _chunks(items: list[uuid.UUID], size: int) -> Iterator[list[uuid.UUID]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
