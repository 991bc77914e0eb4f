"""Snapshot links signed by the API are exactly the ones the minio client would make."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from minio import Minio
from pydantic import SecretStr

from vigil_api.domain.event_snapshots import Presigner
from vigil_shared.settings import S3Settings

NOW = datetime(2026, 11, 28, 9, 14, 5, tzinfo=UTC)


@pytest.mark.parametrize("secure", [False, True])
@pytest.mark.parametrize(
    "key", ["events/lobby-north/1b4e28ba/overlay.jpg", "events/cam 7/ünïcode+plus/a=b.jpg"]
)
def test_links_match_the_minio_client(secure: bool, key: str) -> None:
    s3 = S3Settings(
        endpoint="s3.example:9000",
        access_key="vigil",
        secret_key=SecretStr("a-secret-key-for-the-test"),
        secure=secure,
        region="eu-west-3",
        snapshots_bucket="vigil-snapshots",
    )
    client = Minio(
        s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key.get_secret_value(),
        secure=secure,
        region=s3.region,
    )
    expires = timedelta(minutes=5)
    expected = client.presigned_get_object(
        s3.snapshots_bucket, key, expires=expires, request_date=NOW
    )
    signer = Presigner.for_snapshots(s3, now=NOW, expires=expires)
    assert signer.url(key) == expected


def test_links_are_signed_for_the_public_endpoint() -> None:
    s3 = S3Settings(
        endpoint="minio:9000",
        public_endpoint="nvr.example.org",
        public_secure=True,
        secret_key=SecretStr("a-secret-key-for-the-test"),
    )
    client = Minio(
        "nvr.example.org",
        access_key=s3.access_key,
        secret_key=s3.secret_key.get_secret_value(),
        secure=True,
        region=s3.region,
    )
    expires = timedelta(minutes=5)
    key = "model-1/model.safetensors"
    expected = client.presigned_get_object(s3.models_bucket, key, expires=expires, request_date=NOW)
    signer = Presigner.for_bucket(s3, s3.models_bucket, now=NOW, expires=expires)
    assert signer.url(key) == expected
    # the bucket is the environment's (the integration session points it at a test bucket)
    assert expected.startswith(f"https://nvr.example.org/{s3.models_bucket}/")
