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

import contextlib
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from minio import Minio
from minio.error import S3Error
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.inputs import ONE_LINE, ONE_LINE_SCHEMA
from vigil_shared.storage import (
    StorageError,
    get_bytes,
    list_keys,
    put_bytes,
    remove_keys,
    sha256_hex,
)

DATASET_SCHEMA: Literal["vigil.dataset.v1"] = "vigil.dataset.v1"
DatasetName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")]
DatasetVersion = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$"
Label = Annotated[str, StringConstraints(pattern=LABEL_PATTERN)]
# The unit evaluation holds out (a clip, a camera, a day): a name, as long as a folder path.
GroupName = Annotated[
    str, StringConstraints(min_length=1, max_length=256), ONE_LINE, ONE_LINE_SCHEMA
]
# composed: several versions (and sources) in one, e.g. a camera's footage with its reviews.
DatasetSource = Literal["upload", "camera", "events", "import", "composed"]
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
    source: DatasetSource
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
    source: DatasetSource,
    description: str = "",
) -> DatasetManifest:
    """Store a new version; all or nothing. An identical existing version is returned as is."""
    manifest, _ = write_version(
        client, bucket, name=name, images=images, source=source, description=description
    )
    return manifest


def write_version(
    client: Minio,
    bucket: str,
    *,
    name: str,
    images: Sequence[NewImage],
    source: DatasetSource,
    description: str = "",
) -> tuple[DatasetManifest, bool]:
    """``write_dataset``, and whether this call stored the version (False: an identical one
    existed), so a caller whose next step fails removes only what it wrote (``delete_version``).

    Every item and the manifest are validated before the first object is written."""
    if not images:
        raise DatasetError(f"dataset {name!r} would be empty")
    hashes = [sha256_hex(image.data) for image in images]
    version = content_version(
        (h, i.label, i.group, i.sequence) for h, i in zip(hashes, images, strict=True)
    )
    existing = _try_load(client, bucket, name, version)
    if existing is not None:
        return existing, False
    prefix = dataset_prefix(name, version)
    try:
        items = tuple(
            _item(f"{prefix}images/{digest}{_extension(image, digest)}", digest, image)
            for image, digest in zip(images, hashes, strict=True)
        )
        manifest = DatasetManifest(
            name=name,
            version=version,
            source=source,
            description=description,
            created_at=utc_now(),
            items=items,
        )
    except ValidationError as exc:
        raise DatasetError(f"dataset {name!r} cannot be stored: {exc}") from exc
    written: list[str] = []
    try:
        for image, item in zip(images, items, strict=True):
            if item.key not in written:
                content_type = _CONTENT_TYPES[image.extension.lower()]
                put_bytes(client, bucket, item.key, image.data, content_type)
                written.append(item.key)
        body = manifest.model_dump_json(by_alias=True, indent=1).encode()
        put_bytes(client, bucket, manifest_key(name, version), body, "application/json")
    except BaseException:
        _delete(client, bucket, written)
        raise
    return manifest, True


def delete_version(client: Minio, bucket: str, name: str, version: str) -> None:
    """Remove a version: its manifest first (so it stops being listed), then its images.
    Raises ``StorageError`` naming an object S3 would not delete."""
    remove_keys(client, bucket, [manifest_key(name, version)])
    remove_keys(client, bucket, list_keys(client, bucket, dataset_prefix(name, version)))


def _extension(image: NewImage, digest: str) -> str:
    ext = image.extension.lower()
    if ext not in _CONTENT_TYPES:
        raise DatasetError(f"{image.source_name or digest}: unsupported type {ext!r}")
    return ext


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
    """Best effort, after a failed write: the write's own error is the one to report."""
    with contextlib.suppress(StorageError):
        remove_keys(client, bucket, keys)


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
