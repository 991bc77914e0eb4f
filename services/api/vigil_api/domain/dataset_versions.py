"""Storing dataset versions: who may add one to a dataset, who sees which, all or nothing.

Ownership: a version records the camera scope of the key that made it (``owner_scope``; null for
an unscoped key: fleet-wide). A camera-scoped key may add a version to a dataset only when every
version already there was made under a scope within its own, so it can never add the newest
version (what a job that names the dataset without a version trains on) to a fleet-wide dataset
or to another scope's. A dataset whose versions are in object storage but not recorded (written
by a script) counts as fleet-wide. Unscoped keys may add to any dataset.

All or nothing: the images and the manifest are written to S3 first (``write_version``), then
the row; if the row cannot be written, what this request wrote to S3 is removed again, so a
failure leaves no version that a job could pick up as the latest.
"""

from __future__ import annotations

import uuid
from typing import IO

from minio import Minio
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from vigil_api.core.deps import Clients
from vigil_api.core.security import Principal
from vigil_api.domain.archives import ArchiveLimits, read_archive
from vigil_shared.datasets import (
    DatasetManifest,
    DatasetSource,
    NewImage,
    delete_version,
    manifest_key,
    write_version,
)
from vigil_shared.db.models import Dataset
from vigil_shared.storage import list_keys


class NotOwnerError(Exception):
    """This key may not add a version to this dataset; the message says why."""


def visible(principal: Principal, camera_ids: list[str]) -> bool:
    """Unscoped keys see every version; scoped keys those made only of their cameras' images."""
    if principal.camera_ids is None:
        return True
    return bool(camera_ids) and set(camera_ids) <= principal.camera_ids


def visible_versions(
    *, session: Session, principal: Principal, name: str | None = None
) -> list[Dataset]:
    query = select(Dataset).order_by(Dataset.name, Dataset.created_at)
    if name is not None:
        query = query.where(Dataset.name == name)
    return [row for row in session.scalars(query) if visible(principal, row.camera_ids)]


def owner_problem(*, session: Session, principal: Principal, name: str) -> str | None:
    """Why ``principal`` may not add a version to dataset ``name`` (None: it may), from the
    versions recorded in the database."""
    if principal.camera_ids is None:
        return None
    owners = session.scalars(select(Dataset.owner_scope).where(Dataset.name == name)).all()
    if any(owner is None for owner in owners):
        return (
            f"dataset {name} is fleet-wide (an unscoped key made it), so a camera-scoped key "
            "may not add versions to it; build your version under a new dataset name"
        )
    if any(not set(owner) <= principal.camera_ids for owner in owners if owner is not None):
        return (
            f"dataset {name} belongs to another camera scope (a key with cameras this key does "
            "not have made it); build your version under a new dataset name"
        )
    return None


def check_owner(
    *, session: Session, s3: Minio, bucket: str, principal: Principal, name: str
) -> None:
    """``owner_problem``, also counting versions stored without a row as fleet-wide."""
    problem = owner_problem(session=session, principal=principal, name=name)
    if problem is None and principal.scoped:
        recorded = session.scalar(select(func.count()).where(Dataset.name == name))
        if not recorded and next(list_keys(s3, bucket, f"datasets/{name}/"), None) is not None:
            problem = (
                f"dataset {name} has versions in object storage that no key recorded (imported "
                "by a script), so it counts as fleet-wide; build your version under a new name"
            )
    if problem is not None:
        raise NotOwnerError(problem)


def record_version(
    *, session: Session, manifest: DatasetManifest, principal: Principal, object_key: str
) -> tuple[Dataset, bool]:
    """The version's row, inserted unless it exists; ``True`` when it is new.

    The ownership check is repeated under a lock on the dataset's name, so a scoped key racing
    an unscoped one that creates the dataset cannot slip its version in."""
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"dataset:{manifest.name}"))))
    problem = owner_problem(session=session, principal=principal, name=manifest.name)
    if problem is not None:
        session.rollback()
        raise NotOwnerError(problem)
    statement = (
        insert(Dataset)
        .values(
            id=uuid.uuid4(),
            name=manifest.name,
            version=manifest.version,
            source=manifest.source,
            description=manifest.description,
            manifest_key=object_key,
            n_items=len(manifest.items),
            label_counts=manifest.label_counts,
            camera_ids=manifest.camera_ids,
            owner_scope=None if principal.camera_ids is None else sorted(principal.camera_ids),
            created_by=principal.name,
        )
        .on_conflict_do_nothing(constraint="uq_datasets_name_version")
        .returning(Dataset.id)
    )
    created = session.execute(statement).scalar() is not None
    session.commit()
    row = session.scalars(
        select(Dataset).where(Dataset.name == manifest.name, Dataset.version == manifest.version)
    ).one()
    return row, created


def store_version(
    *,
    session: Session,
    clients: Clients,
    name: str,
    images: list[NewImage],
    source: DatasetSource,
    description: str,
    principal: Principal,
) -> tuple[Dataset, bool]:
    """Write the images as a version, then record it: all or nothing, owners checked first.

    Raises ``NotOwnerError``, or ``DatasetError`` for images that cannot be stored."""
    s3, bucket = clients.s3, clients.settings.common.s3.datasets_bucket
    check_owner(session=session, s3=s3, bucket=bucket, principal=principal, name=name)
    manifest, wrote = write_version(
        s3, bucket, name=name, images=images, source=source, description=description
    )
    try:
        return record_version(
            session=session,
            manifest=manifest,
            principal=principal,
            object_key=manifest_key(manifest.name, manifest.version),
        )
    except BaseException:
        if wrote:  # never leave a version in S3 that no row records: a job would find it
            delete_version(s3, bucket, name, manifest.version)
        raise


def archive_images(
    fileobj: IO[bytes], *, limits: ArchiveLimits, video_fps: float | None = None
) -> list[NewImage]:
    return [
        NewImage(
            data=image.data,
            extension=image.extension,
            group=image.group,
            label=image.label,
            sequence=image.sequence,
            captured_at=image.captured_at,
            source_name=image.name,
        )
        for image in read_archive(fileobj, limits=limits, video_fps=video_fps)
    ]


def limits_of(clients: Clients) -> ArchiveLimits:
    settings = clients.settings
    return ArchiveLimits(
        max_bytes=settings.archive_max_bytes,
        max_entries=settings.archive_max_entries,
        max_uncompressed_bytes=settings.archive_max_uncompressed_bytes,
        max_ratio=settings.archive_max_ratio,
        max_pixels=settings.image_max_pixels,
    )
