"""Object storage through the ``minio`` client: the same code runs on MinIO and SeaweedFS."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from urllib3.exceptions import HTTPError

from vigil_shared.settings import S3Settings


class StorageError(RuntimeError):
    """S3 refused or could not be reached; the message says what to check."""


class IntegrityError(StorageError):
    """An object's content does not match the sha256 recorded for it."""


def make_s3_client(settings: S3Settings) -> Minio:
    return Minio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key.get_secret_value(),
        secure=settings.secure,
        region=settings.region,
    )


def ensure_buckets(client: Minio, settings: S3Settings) -> None:
    """Create Vigil's buckets if missing; a wrong credential fails here with one clear line."""
    for bucket in (settings.datasets_bucket, settings.models_bucket, settings.snapshots_bucket):
        try:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
        except S3Error as exc:
            if exc.code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}:
                raise StorageError(
                    f"S3 at {settings.endpoint} refused the credentials ({exc.code}); "
                    "check VIGIL_S3_ACCESS_KEY and VIGIL_S3_SECRET_KEY"
                ) from exc
            raise StorageError(f"S3 at {settings.endpoint}: {exc.code}: {exc.message}") from exc
        except (OSError, HTTPError) as exc:  # nothing listens, or the connection broke
            raise StorageError(
                f"S3 is unreachable at {settings.endpoint}; start it or set VIGIL_S3_ENDPOINT"
            ) from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_bytes(client: Minio, bucket: str, key: str, data: bytes, content_type: str) -> str:
    """Store ``data`` and return its sha256, which callers record next to the key."""
    client.put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type)
    return sha256_hex(data)


def get_bytes(client: Minio, bucket: str, key: str, *, sha256: str | None = None) -> bytes:
    """Read an object; with ``sha256``, refuse content that does not match it."""
    response = client.get_object(bucket, key)
    try:
        data = response.read()
    finally:
        response.close()
        response.release_conn()
    if sha256 is not None and sha256_hex(data) != sha256:
        raise IntegrityError(
            f"s3://{bucket}/{key} does not match its recorded sha256 {sha256[:12]}...; "
            "the object was modified or corrupted: re-upload it or restore it from backup"
        )
    return data


def list_keys(client: Minio, bucket: str, prefix: str) -> Iterator[str]:
    for obj in client.list_objects(bucket, prefix=prefix, recursive=True):
        if obj.object_name is not None and not obj.is_dir:
            yield obj.object_name


def remove_keys(client: Minio, bucket: str, keys: Iterable[str]) -> int:
    """Delete these objects (a missing one is no error); returns how many were asked for.
    Raises ``StorageError`` naming the first object S3 would not delete."""
    wanted = [DeleteObject(key) for key in keys]
    if not wanted:
        return 0
    for error in client.remove_objects(bucket, wanted):  # the iterator performs the deletes
        raise StorageError(f"s3://{bucket}/{error.name} was not deleted: {error.code}")
    return len(wanted)
