"""Versioned datasets in S3: immutable, content-addressed, written so a reader never sees half.

Layout in the datasets bucket::

    datasets/<name>/<version>/images/<sha256><ext>   one object per distinct image
    datasets/<name>/<version>/manifest.json          written last: its presence *is* the dataset

``version`` is the sha256 over the sorted items (image sha256, label, group, sequence), so the
same content always gets the same version and a job records exactly what it trained on. Writers
upload the images first and the manifest last; a failed write deletes what it uploaded, so
nothing partial is ever listed. Readers check every image against its recorded sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from vigil_shared.schemas.frames import utc_now
from vigil_shared.storage import get_bytes, put_bytes, sha256_hex

DATASET_SCHEMA: Literal["vigil.dataset.v1"] = "vigil.dataset.v1"
DatasetName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")]
DatasetVersion = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Label = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")]
_CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


class DatasetError(ValueError):
    """A dataset that does not exist or cannot be used; the message says which and why."""


class DatasetItem(BaseModel):
    """One image. ``group`` is the unit evaluation splits by (a clip, a camera, a day), never a
    random frame; ``sequence`` orders the frames of a group, for models that use motion."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    label: Label | None = None
    group: str = Field(min_length=1, max_length=256)
    sequence: int | None = Field(default=None, ge=0)
    camera_id: str | None = None
    captured_at: AwareDatetime | None = None
    source_name: str | None = Field(
        default=None, max_length=1024, description="Path in the uploaded archive, for reports."
    )


class DatasetManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_: Literal["vigil.dataset.v1"] = Field(default=DATASET_SCHEMA, alias="schema")
    name: DatasetName
    version: DatasetVersion
    source: Literal["upload", "camera", "events", "import"]
    description: str = ""
    created_at: AwareDatetime
    items: tuple[DatasetItem, ...]

    @property
    def label_counts(self) -> dict[str, int]:
        return dict(Counter(item.label or "" for item in self.items))

    @property
    def camera_ids(self) -> list[str]:
        return sorted({item.camera_id for item in self.items if item.camera_id is not None})


class DatasetRef(BaseModel):
    """A dataset as a job names it; without ``version`` the job resolves and records the latest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: DatasetName = Field(examples=["ped2-train"])
    version: DatasetVersion | None = None


@dataclass(frozen=True)
class NewImage:
    """An image to store in a new dataset version (already checked to be decodable)."""

    data: bytes
    extension: str
    group: str
    label: str | None = None
    sequence: int | None = None
    camera_id: str | None = None
    captured_at: datetime | None = None
    source_name: str | None = None


def dataset_prefix(name: str, version: str) -> str:
    return f"datasets/{name}/{version}/"


def manifest_key(name: str, version: str) -> str:
    return dataset_prefix(name, version) + "manifest.json"


def content_version(items: Iterable[tuple[str, str | None, str, int | None]]) -> str:
    """sha256 over sorted (image sha256, label, group, sequence): equal content, equal version."""
    lines = sorted(json.dumps(list(item)) for item in items)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def write_dataset(
    client: Minio,
    bucket: str,
    *,
    name: str,
    images: Sequence[NewImage],
    source: Literal["upload", "camera", "events", "import"],
    description: str = "",
) -> DatasetManifest:
    """Store a new version; all or nothing. An identical existing version is returned as is."""
    if not images:
        raise DatasetError(f"dataset {name!r} would be empty")
    hashes = [sha256_hex(image.data) for image in images]
    version = content_version(
        (h, i.label, i.group, i.sequence) for h, i in zip(hashes, images, strict=True)
    )
    existing = _try_load(client, bucket, name, version)
    if existing is not None:
        return existing
    prefix = dataset_prefix(name, version)
    written: list[str] = []
    items: list[DatasetItem] = []
    try:
        for image, digest in zip(images, hashes, strict=True):
            ext = image.extension.lower()
            if ext not in _CONTENT_TYPES:
                raise DatasetError(f"{image.source_name or digest}: unsupported type {ext!r}")
            key = f"{prefix}images/{digest}{ext}"
            if key not in written:
                put_bytes(client, bucket, key, image.data, _CONTENT_TYPES[ext])
                written.append(key)
            items.append(_item(key, digest, image))
        manifest = DatasetManifest(
            name=name,
            version=version,
            source=source,
            description=description,
            created_at=utc_now(),
            items=tuple(items),
        )
        body = manifest.model_dump_json(by_alias=True, indent=1).encode()
        put_bytes(client, bucket, manifest_key(name, version), body, "application/json")
    except BaseException:
        _delete(client, bucket, written)
        raise
    return manifest


def _item(key: str, digest: str, image: NewImage) -> DatasetItem:
    return DatasetItem(
        key=key,
        sha256=digest,
        label=image.label,
        group=image.group,
        sequence=image.sequence,
        camera_id=image.camera_id,
        captured_at=image.captured_at,
        source_name=image.source_name,
    )


def _delete(client: Minio, bucket: str, keys: list[str]) -> None:
    if keys:
        errors = client.remove_objects(bucket, [DeleteObject(k) for k in keys])
        for _ in errors:  # the iterator performs the deletes
            pass


def _try_load(client: Minio, bucket: str, name: str, version: str) -> DatasetManifest | None:
    try:
        raw = get_bytes(client, bucket, manifest_key(name, version))
    except S3Error as exc:
        if exc.code == "NoSuchKey":
            return None
        raise
    return DatasetManifest.model_validate_json(raw)


def list_versions(client: Minio, bucket: str, name: str) -> list[DatasetManifest]:
    """Every stored version of ``name``, oldest first."""
    manifests = []
    for obj in client.list_objects(bucket, prefix=f"datasets/{name}/", recursive=False):
        if obj.object_name is None or not obj.is_dir:
            continue
        version = obj.object_name.rstrip("/").rsplit("/", 1)[-1]
        manifest = _try_load(client, bucket, name, version)
        if manifest is not None:
            manifests.append(manifest)
    return sorted(manifests, key=lambda m: m.created_at)


def load_manifest(client: Minio, bucket: str, ref: DatasetRef) -> DatasetManifest:
    """The named version, or the latest when the ref has none; a clear error when missing."""
    if ref.version is not None:
        manifest = _try_load(client, bucket, ref.name, ref.version)
        if manifest is None:
            raise DatasetError(f"dataset {ref.name} has no version {ref.version[:12]}...")
        return manifest
    versions = list_versions(client, bucket, ref.name)
    if not versions:
        raise DatasetError(f"dataset {ref.name!r} does not exist; upload it first")
    return versions[-1]


def read_image(client: Minio, bucket: str, item: DatasetItem) -> bytes:
    """The image bytes, refused (``IntegrityError``) if they differ from the manifest's sha256."""
    return get_bytes(client, bucket, item.key, sha256=item.sha256)
