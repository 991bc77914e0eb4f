"""A new dataset version made of existing ones: e.g. a site's normal footage, its reviewed false
alarms (normal) and its confirmed events (anomalies), each kept in its own groups.

Every part names a version this key sees (or, without a version, the latest it sees) and may
relabel all its images (a version of false alarms added as ``normal``). The images are read back
and checked against their sha256, then stored as one version, content-addressed like any other:
composing the same parts twice gives the same version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from minio import Minio
from sqlalchemy.orm import Session

from vigil_api.core.security import Principal
from vigil_api.domain.dataset_sources import SourceError
from vigil_api.domain.dataset_versions import visible_versions
from vigil_shared.datasets import DatasetItem, DatasetRef, NewImage, load_manifest, read_image


@dataclass(frozen=True)
class Part:
    """A version to include (the latest this key sees when ``version`` is None), and the label
    every one of its images gets instead of its own (None: keep them)."""

    dataset: str
    version: str | None = None
    label: str | None = None


def compose_images(
    *,
    session: Session,
    s3: Minio,
    bucket: str,
    principal: Principal,
    parts: Sequence[Part],
    max_frames: int,
) -> list[NewImage]:
    """The images of every part, in part order; ``SourceError`` names a part that this key
    cannot use or a total past ``max_frames``."""
    images: list[NewImage] = []
    for part in parts:
        version = _version(session=session, principal=principal, part=part)
        manifest = load_manifest(s3, bucket, DatasetRef(name=part.dataset, version=version))
        if len(images) + len(manifest.items) > max_frames:
            raise SourceError(
                f"the parts hold more than {max_frames} images; compose fewer or smaller versions"
            )
        images.extend(_image(read_image(s3, bucket, item), item, part) for item in manifest.items)
    return images


def _version(*, session: Session, principal: Principal, part: Part) -> str:
    rows = visible_versions(session=session, principal=principal, name=part.dataset)
    if part.version is None and rows:
        return rows[-1].version
    if any(row.version == part.version for row in rows) and part.version is not None:
        return part.version
    which = f"version {part.version[:12]}..." if part.version else "any version"
    raise SourceError(f"dataset {part.dataset} has no {which} that this key can see")


def _image(data: bytes, item: DatasetItem, part: Part) -> NewImage:
    return NewImage(
        data=data,
        extension=PurePosixPath(item.key).suffix,
        group=item.group,
        label=part.label if part.label is not None else item.label,
        sequence=item.sequence,
        camera_id=item.camera_id,
        captured_at=item.captured_at,
        source_name=item.source_name,
    )
