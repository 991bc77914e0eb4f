"""Versioned datasets in real S3: content-addressed, all-or-nothing, verified on read."""

from __future__ import annotations

import io
import uuid

import pytest
from minio import Minio
from PIL import Image

from vigil_shared.datasets import (
    DatasetError,
    DatasetRef,
    NewImage,
    dataset_prefix,
    load_manifest,
    read_image,
    write_dataset,
)
from vigil_shared.settings import CommonSettings
from vigil_shared.storage import IntegrityError, list_keys


def jpeg(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (shade, shade, shade)).save(buffer, format="JPEG")
    return buffer.getvalue()


def images(n: int, group: str = "clip-1") -> list[NewImage]:
    return [
        NewImage(data=jpeg(20 * i), extension=".jpg", group=group, label="normal", sequence=i)
        for i in range(n)
    ]


def test_same_content_gets_the_same_version_and_reads_back_verified(
    s3: Minio, settings: CommonSettings
) -> None:
    bucket, name = settings.s3.datasets_bucket, f"ds-{uuid.uuid4().hex[:8]}"
    first = write_dataset(s3, bucket, name=name, images=images(3), source="upload")
    again = write_dataset(s3, bucket, name=name, images=images(3), source="upload")
    assert again.version == first.version and again.created_at == first.created_at
    other = write_dataset(s3, bucket, name=name, images=images(4), source="upload")
    assert other.version != first.version
    latest = load_manifest(s3, bucket, DatasetRef(name=name))
    assert latest.version == other.version and latest.label_counts == {"normal": 4}
    pinned = load_manifest(s3, bucket, DatasetRef(name=name, version=first.version))
    assert [read_image(s3, bucket, item) for item in pinned.items] == [
        image.data for image in images(3)
    ]


def test_a_modified_image_is_refused(s3: Minio, settings: CommonSettings) -> None:
    bucket, name = settings.s3.datasets_bucket, f"ds-{uuid.uuid4().hex[:8]}"
    manifest = write_dataset(s3, bucket, name=name, images=images(2), source="upload")
    item = manifest.items[0]
    s3.put_object(bucket, item.key, io.BytesIO(b"tampered"), 8)
    with pytest.raises(IntegrityError, match="does not match its recorded sha256"):
        read_image(s3, bucket, item)


def test_a_failed_write_leaves_nothing(s3: Minio, settings: CommonSettings) -> None:
    bucket, name = settings.s3.datasets_bucket, f"ds-{uuid.uuid4().hex[:8]}"
    bad = [*images(2), NewImage(data=b"x", extension=".gif", group="g", source_name="a/b.gif")]
    with pytest.raises(DatasetError, match=r"a/b\.gif: unsupported type"):
        write_dataset(s3, bucket, name=name, images=bad, source="upload")
    assert list(list_keys(s3, bucket, f"datasets/{name}/")) == []
    with pytest.raises(DatasetError, match="does not exist"):
        load_manifest(s3, bucket, DatasetRef(name=name))
    assert dataset_prefix(name, "0" * 64).startswith(f"datasets/{name}/")
