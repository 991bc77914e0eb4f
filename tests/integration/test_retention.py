"""Retention against the real database and S3: nothing outlives its camera's policy (or the
global maximum), and nothing still needed is deleted.

The sweep works on buckets of this test's own, so it never touches another run's objects or a
running stack's snapshots; "now" is passed in, which stands for objects growing old.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from minio import Minio
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import (
    add_job,
    add_model,
    add_rows,
    camera_dataset,
    event_lifecycle,
    make_camera,
    make_event,
    scene_jpeg,
)
from tests.integration.conftest import StartService
from tests.support import wait_until
from vigil_api.consumers.sink import store_messages
from vigil_api.domain.deletion import Buckets
from vigil_api.retention.sweep import RetentionMetrics, RetentionSweep
from vigil_shared.datasets import list_versions
from vigil_shared.db.models import (
    Dataset,
    DeletedEvent,
    DeletionRecord,
    Event,
)
from vigil_shared.schemas.events import snapshot_keys
from vigil_shared.schemas.frames import utc_now
from vigil_shared.storage import list_keys, put_bytes

MAX_DAYS = 30
DAY = timedelta(days=1)


@pytest.fixture
def buckets(s3: Minio) -> Iterator[Buckets]:
    suffix = uuid.uuid4().hex[:10]
    own = Buckets(
        snapshots=f"vigil-test-retention-s-{suffix}",
        datasets=f"vigil-test-retention-d-{suffix}",
        models=f"vigil-test-retention-m-{suffix}",
    )
    for bucket in (own.snapshots, own.datasets, own.models):
        s3.make_bucket(bucket)
    yield own
    for bucket in (own.snapshots, own.datasets, own.models):
        for key in list_keys(s3, bucket, ""):
            s3.remove_object(bucket, key)
        s3.remove_bucket(bucket)


@pytest.fixture
def sweep(engine: Engine, s3: Minio, buckets: Buckets) -> RetentionSweep:
    return RetentionSweep(
        engine=engine,
        s3=s3,
        buckets=buckets,
        max_days=MAX_DAYS,
        tombstone_days=31,
        metrics=RetentionMetrics(),
    )


@dataclass(frozen=True)
class Cameras:
    week: str  # retention_days 7
    default: str  # no policy: the global maximum
    beyond: str  # retention_days 60, capped by the global maximum
    unregistered: str  # events of a camera the API does not know: the global maximum


@pytest.fixture
def cameras(sessions: sessionmaker[Session]) -> Cameras:
    ids = Cameras(*(f"ret-{uuid.uuid4().hex[:8]}" for _ in range(4)))
    policies = ((ids.week, 7), (ids.default, None), (ids.beyond, 60))
    add_rows(sessions, [make_camera(c, retention_days=days) for c, days in policies])
    return ids


def add_event(
    sessions: sessionmaker[Session],
    s3: Minio,
    bucket: str,
    camera_id: str,
    started_at: datetime,
) -> uuid.UUID:
    """An ended event with its two snapshot objects."""
    event_id = uuid.uuid4()
    overlay, frame = snapshot_keys(camera_id=camera_id, event_id=event_id)
    for key in (overlay, frame):
        put_bytes(s3, bucket, key, scene_jpeg(1), "image/jpeg")
    event = make_event(
        camera_id,
        0,
        event_id=event_id,
        started_at=started_at,
        captured_at=started_at + timedelta(seconds=2),
        detected_at=started_at + timedelta(seconds=2),
        ended_at=started_at + timedelta(seconds=5),
        snapshot_key=overlay,
    )
    add_rows(sessions, [event])
    return event_id


def stored(sessions: sessionmaker[Session], ids: list[uuid.UUID]) -> set[uuid.UUID]:
    with sessions() as session:
        return set(session.scalars(select(Event.event_id).where(Event.event_id.in_(ids))))


def snapshots_left(s3: Minio, bucket: str, camera_id: str) -> set[str]:
    return set(list_keys(s3, bucket, f"events/{camera_id}/"))


def audit_rows(sessions: sessionmaker[Session], target: str) -> list[DeletionRecord]:
    with sessions() as session:
        query = select(DeletionRecord).where(DeletionRecord.target == target)
        return list(session.scalars(query.order_by(DeletionRecord.id)))


def test_no_event_or_snapshot_outlives_its_cameras_policy(
    sweep: RetentionSweep,
    sessions: sessionmaker[Session],
    s3: Minio,
    buckets: Buckets,
    cameras: Cameras,
) -> None:
    now = utc_now()
    bucket = buckets.snapshots

    def event(camera_id: str, days_ago: float) -> tuple[str, uuid.UUID]:
        return camera_id, add_event(sessions, s3, bucket, camera_id, now - days_ago * DAY)

    expired = [
        event(cameras.week, 8),
        event(cameras.default, 31),
        event(cameras.beyond, 31),
        event(cameras.unregistered, 31),
    ]
    kept = [
        event(cameras.week, 6),
        event(cameras.default, 29),
        event(cameras.beyond, 29),
        event(cameras.unregistered, 1),
    ]
    report = sweep.sweep(now=now)
    assert report is not None and report.events >= len(expired)

    assert stored(sessions, [e for _, e in expired + kept]) == {e for _, e in kept}
    left = {k for c in vars(cameras).values() for k in snapshots_left(s3, bucket, c)}
    assert left == {k for c, e in kept for k in snapshot_keys(camera_id=c, event_id=e)}, (
        "every expired snapshot deleted, every kept one still there"
    )

    [record] = audit_rows(sessions, cameras.week)
    assert (record.actor, record.kind) == ("retention", "events")
    assert record.reason == "retention: older than 7 days (the camera's policy)"
    assert record.detail["event_ids"] == [str(expired[0][1])]
    [capped] = audit_rows(sessions, cameras.beyond)
    assert capped.reason == "retention: older than 30 days (the global maximum)"

    # A message of a deleted event (a late update, a replay) does not bring it back.
    with sessions() as session:
        tombstones = set(session.scalars(select(DeletedEvent.event_id)))
    assert {e for _, e in expired} <= tombstones
    [message, *_] = event_lifecycle(cameras.week, 0)
    replayed = message.model_copy(update={"event_id": expired[0][1], "camera_id": cameras.week})
    assert store_messages(sessions, [replayed]) == 0
    assert not stored(sessions, [expired[0][1]])

    again = sweep.sweep(now=now)
    kept_ids = {e for _, e in kept}
    assert again is not None and stored(sessions, list(kept_ids)) == kept_ids, "still kept"


def test_an_orphan_snapshot_goes_when_old_and_a_kept_events_stays(
    sweep: RetentionSweep,
    sessions: sessionmaker[Session],
    s3: Minio,
    buckets: Buckets,
    cameras: Cameras,
) -> None:
    later = utc_now() + 8 * DAY  # the objects written now are 8 days old then
    kept = add_event(sessions, s3, buckets.snapshots, cameras.week, later - 6 * DAY)
    orphan = uuid.uuid4()  # an upload whose message was never stored, or came after a delete
    orphan_keys = snapshot_keys(camera_id=cameras.week, event_id=orphan)
    for key in orphan_keys:
        put_bytes(s3, buckets.snapshots, key, scene_jpeg(2), "image/jpeg")
    young = uuid.uuid4()  # an orphan still within the policy: left for now
    put_bytes(
        s3,
        buckets.snapshots,
        snapshot_keys(camera_id=cameras.default, event_id=young)[0],
        scene_jpeg(3),
        "image/jpeg",
    )

    report = sweep.sweep(now=later)
    assert report is not None and report.snapshots == 1
    left = snapshots_left(s3, buckets.snapshots, cameras.week)
    assert left == set(snapshot_keys(camera_id=cameras.week, event_id=kept))
    assert snapshots_left(s3, buckets.snapshots, cameras.default)
    [record] = [r for r in audit_rows(sessions, cameras.week) if r.kind == "snapshots"]
    assert record.detail == {"count": 1, "event_ids": [str(orphan)]}


def test_camera_footage_in_datasets_goes_unless_a_model_or_job_needs_it(
    sweep: RetentionSweep,
    sessions: sessionmaker[Session],
    s3: Minio,
    buckets: Buckets,
    cameras: Cameras,
) -> None:
    now = utc_now()
    old = now - 10 * DAY

    def dataset(camera_id: str | None) -> Dataset:
        return camera_dataset(sessions, s3, buckets.datasets, camera_id=camera_id, captured_at=old)

    expired = dataset(cameras.week)
    lineage = dataset(cameras.week)
    model_id = add_model(sessions, dataset_name=lineage.name, dataset_version=lineage.version)
    pending = dataset(cameras.week)
    job_id = add_job(sessions, spec={"task": "one_class", "dataset": {"name": pending.name}})
    within = dataset(cameras.default)  # 30 days: kept
    upload = dataset(None)  # no camera's footage: not the cameras' policy to expire

    report = sweep.sweep(now=now)
    assert report is not None
    assert f"{lineage.name}@{lineage.version}" in report.held
    assert f"{pending.name}@{pending.version}" in report.held
    with sessions() as session:
        names = set(session.scalars(select(Dataset.name)))
        footage = session.scalar(select(Dataset.footage_from).where(Dataset.id == within.id))
    assert expired.name not in names
    assert {lineage.name, pending.name, within.name, upload.name} <= names
    assert footage == old, "the oldest frame's capture time, read from the manifest"
    assert not list(list_keys(s3, buckets.datasets, f"datasets/{expired.name}/"))
    for row in (lineage, pending, within, upload):
        assert list_versions(s3, buckets.datasets, row.name), f"{row.name} lost its objects"
    [record] = audit_rows(sessions, f"{expired.name}@{expired.version}")
    assert (record.actor, record.kind) == ("retention", "dataset")
    assert record.reason == "retention: footage older than 7 days"
    assert record.detail["camera_ids"] == [cameras.week]
    held = sweep.metrics.registry.get_sample_value("vigil_retention_held_datasets")
    assert held is not None and held >= 2
    assert model_id and job_id


def test_the_retention_process_sweeps_and_stops_on_sigterm(
    sessions: sessionmaker[Session],
    s3: Minio,
    buckets: Buckets,
    cameras: Cameras,
    start_service: StartService,
) -> None:
    expired = add_event(sessions, s3, buckets.snapshots, cameras.week, utc_now() - 8 * DAY)
    process = start_service(
        "vigil_api.retention",
        VIGIL_S3_SNAPSHOTS_BUCKET=buckets.snapshots,
        VIGIL_S3_DATASETS_BUCKET=buckets.datasets,
        VIGIL_S3_MODELS_BUCKET=buckets.models,
        VIGIL_API_RETENTION_MAX_DAYS=str(MAX_DAYS),
        VIGIL_API_RETENTION_INTERVAL_S="3600",
    )

    def deleted() -> bool:
        process.assert_running()
        return not stored(sessions, [expired])

    wait_until(deleted, timeout_s=120, what="the expired event deleted by the process")
    assert not snapshots_left(s3, buckets.snapshots, cameras.week)
    assert process.stop() == 0
