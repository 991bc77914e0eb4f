"""Deleting events, dataset versions and models: one path for a request and for the retention
sweep, so that every deletion takes what S3 holds with the row and is written to the audit log
(``deletion_audit``: who, what, when, why). The caller's session commits: the audit row and
the deletion go together.

- Events: their snapshots (both keys), their rows, and a tombstone per id (``deleted_events``)
  so that the event sink does not store one again from a late update or a replayed message.
- A dataset version is refused (``InUseError``) while something still needs it: a model whose
  lineage names it (trained on it), or a job not finished that will read it; ``force`` deletes
  it anyway, and the audit row names what needed it. Its manifest goes first (the manifest's
  presence *is* the dataset, so a reader never sees half of one), then its images, then its row.
- A model is refused while any assignment names it (a camera's or the fleet default, production
  or shadow): inference would lose it; and while an ensemble in the registry has it as a member
  (an ensemble loads its members' artifacts). Its artifact and manifest go, then its row.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from minio import Minio
from minio.error import S3Error
from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from vigil_shared.datasets import delete_version
from vigil_shared.db.models import (
    Dataset,
    DeletedEvent,
    DeletionRecord,
    Event,
    Job,
    Model,
    ModelAssignmentRow,
)
from vigil_shared.schemas.events import snapshot_keys
from vigil_shared.schemas.jobs import JobStatus
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.storage import get_bytes, list_keys, remove_keys

UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING)


@dataclass(frozen=True)
class Deletion:
    """Who deletes, and why: what the audit log keeps beside what was deleted."""

    actor: str
    reason: str


@dataclass(frozen=True)
class Buckets:
    snapshots: str
    datasets: str
    models: str


class InUseError(Exception):
    """Something still needs what was to be deleted; ``needed_by`` says what."""

    def __init__(self, message: str, needed_by: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.needed_by = needed_by


@dataclass(frozen=True)
class Audit:
    """Adds an audit row to the session (committed with the deletion) per ``record`` call."""

    session: Session
    deletion: Deletion

    def record(self, *, kind: str, target: str, detail: dict[str, Any]) -> None:
        self.session.add(
            DeletionRecord(
                actor=self.deletion.actor,
                kind=kind,
                target=target[:255],
                reason=self.deletion.reason,
                detail=detail,
            )
        )


def delete_events(
    *, session: Session, s3: Minio, bucket: str, events: Sequence[Event], deletion: Deletion
) -> int:
    """Delete these events with their snapshots; one audit row per camera, listing the ids."""
    if not events:
        return 0
    keys = [k for e in events for k in snapshot_keys(camera_id=e.camera_id, event_id=e.event_id)]
    remove_keys(s3, bucket, keys)
    ids = [e.event_id for e in events]
    session.execute(delete(Event).where(Event.event_id.in_(ids)))
    tombstones = [{"event_id": e.event_id, "camera_id": e.camera_id} for e in events]
    session.execute(insert(DeletedEvent).values(tombstones).on_conflict_do_nothing())
    by_camera: dict[str, list[str]] = defaultdict(list)
    for event in events:
        by_camera[event.camera_id].append(str(event.event_id))
    audit = Audit(session, deletion)
    for camera_id, event_ids in sorted(by_camera.items()):
        audit.record(
            kind="events",
            target=camera_id,
            detail={"count": len(event_ids), "event_ids": event_ids},
        )
    return len(events)


def dataset_needed_by(session: Session, *, name: str, version: str) -> dict[str, list[str]]:
    """What still needs this dataset version: models trained on it, and unfinished jobs that
    name it (one that names the dataset without a version reads the latest, which may be it)."""
    trained = func.coalesce(Model.dataset_version, Model.dataset_sha256) == version
    models = session.scalars(select(Model.id).where(Model.dataset_name == name, trained)).all()
    jobs = [
        str(job.id)
        for job in session.scalars(select(Job).where(Job.status.in_(list(UNFINISHED))))
        if _job_reads(job, name=name, version=version)
    ]
    needed = {"models": sorted(models), "jobs": sorted(jobs)}
    return {what: ids for what, ids in needed.items() if ids}


def _job_reads(job: Job, *, name: str, version: str) -> bool:
    dataset = job.spec.get("dataset") if isinstance(job.spec, dict) else None
    if not isinstance(dataset, dict) or dataset.get("name") != name:
        return False
    return dataset.get("version") in (None, version)


def delete_dataset(
    *, session: Session, s3: Minio, bucket: str, row: Dataset, deletion: Deletion, force: bool
) -> None:
    """Delete a dataset version, refused while it is needed unless ``force``."""
    needed = dataset_needed_by(session, name=row.name, version=row.version)
    if needed and not force:
        raise InUseError(
            _needed_message(f"dataset {row.name} version {row.version}", needed), needed
        )
    delete_version(s3, bucket, row.name, row.version)
    Audit(session, deletion).record(
        kind="dataset",
        target=f"{row.name}@{row.version}",
        detail={
            "source": row.source,
            "camera_ids": list(row.camera_ids),
            "n_items": row.n_items,
            "forced": bool(needed) and force,
            "needed_by": needed,
        },
    )
    session.delete(row)


def model_needed_by(
    session: Session, *, s3: Minio, bucket: str, model_id: str
) -> dict[str, list[str]]:
    """The scopes (camera ids, ``*`` for the fleet default) whose assignment names the model,
    and the ensembles that have it as a member."""
    named = or_(
        ModelAssignmentRow.production_model_id == model_id,
        ModelAssignmentRow.shadow_model_id == model_id,
    )
    scopes = session.scalars(select(ModelAssignmentRow.scope).where(named)).all()
    ensembles = session.scalars(
        select(Model.id).where(Model.architecture.endswith("_ensemble"), Model.id != model_id)
    ).all()
    needed = {
        "assignments": sorted(scopes),
        "ensembles": sorted(e for e in ensembles if model_id in _members(s3, bucket, e)),
    }
    return {what: ids for what, ids in needed.items() if ids}


def _members(s3: Minio, bucket: str, ensemble_id: str) -> set[str]:
    try:
        raw = get_bytes(s3, bucket, ModelManifest.manifest_key(ensemble_id))
    except S3Error as exc:
        if exc.code == "NoSuchKey":  # an ensemble without its manifest loads nothing
            return set()
        raise
    ensemble = json.loads(raw).get("ensemble") or {}
    return {str(member["model_id"]) for member in ensemble.get("members", [])}


def delete_model(
    *, session: Session, s3: Minio, bucket: str, row: Model, deletion: Deletion
) -> None:
    """Delete a model's artifact, manifest and row; refused while it is assigned or an
    ensemble's member."""
    needed = model_needed_by(session, s3=s3, bucket=bucket, model_id=row.id)
    if needed:
        raise InUseError(_needed_message(f"model {row.id}", needed), needed)
    # The manifest first: without it the model cannot be loaded, even half deleted.
    remove_keys(s3, bucket, [row.manifest_key])
    prefix = ModelManifest.manifest_key(row.id).rsplit("/", 1)[0] + "/"
    remove_keys(s3, bucket, {row.artifact_key, *list_keys(s3, bucket, prefix)})
    Audit(session, deletion).record(
        kind="model",
        target=row.id,
        detail={
            "name": row.name,
            "task": row.task,
            "stage": row.stage,
            "dataset": f"{row.dataset_name}@{row.dataset_version}" if row.dataset_name else None,
        },
    )
    session.delete(row)


def forget_deleted_events(session: Session, *, before: Any) -> int:
    """Drop tombstones older than ``before``: no message of those events is left in Kafka."""
    result = session.execute(delete(DeletedEvent).where(DeletedEvent.deleted_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def deleted_event_ids(session: Session, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these events were deleted (the event sink skips their messages)."""
    if not ids:
        return set()
    found = session.scalars(select(DeletedEvent.event_id).where(DeletedEvent.event_id.in_(ids)))
    return set(found)


def _needed_message(what: str, needed: dict[str, list[str]]) -> str:
    parts = [
        f"{kind} {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}"
        for kind, ids in needed.items()
    ]
    return f"{what} is still needed ({'; '.join(parts)})"
